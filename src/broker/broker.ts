import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Message, ReceivedMessage } from "../../gen/ts/sessionbus/v1/message_pb.js";
import type { SendResult } from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import type { Store } from "../store/store.js";
import { resolveEntity } from "./entity-resolver.js";
import { MessageLocks } from "./message-locks.js";
import { peekMessages } from "./peek.js";
import { QueueAdmin } from "./queue-admin.js";
import { type ReceiveOptions, receiveMessages } from "./receiver.js";
import { sendBatch } from "./sender.js";
import { Settlement, type SettleOptions } from "./settlement.js";

/** The broker's operations, addressed by entity path; what the RPC handlers call. */
export interface Broker {
  queues: QueueAdmin;
  send(entityPath: string, messages: Message[]): Promise<SendResult[]>;
  peek(entityPath: string, fromSequence: bigint, max: number): Promise<ReceivedMessage[]>;
  receive(entityPath: string, options: ReceiveOptions): AsyncGenerator<ReceivedMessage>;
  settle(entityPath: string, lockTokens: string[], options: SettleOptions): Promise<void>;
  renewMessageLocks(entityPath: string, lockTokens: string[]): Promise<Timestamp[]>;
  receiveDeferred(entityPath: string, sequenceNumbers: bigint[]): Promise<ReceivedMessage[]>;
  /** Forgets this process's message locks; JetStream redelivers their messages on expiry. */
  close(): void;
}

export function createBroker(store: Store): Broker {
  const locks = new MessageLocks();
  const settlement = new Settlement(store, locks);
  const resolve = (path: string) => resolveEntity(store.entities, path);
  return {
    queues: new QueueAdmin(store),
    send: async (path, messages) => sendBatch(store, await resolve(path), messages),
    peek: async (path, from, max) => peekMessages(store, await resolve(path), from, max),
    async *receive(path, options) {
      yield* receiveMessages(store, locks, await resolve(path), options);
    },
    settle: async (path, tokens, options) =>
      settlement.settle(await resolve(path), tokens, options),
    renewMessageLocks: async (path, tokens) => settlement.renew(await resolve(path), tokens),
    receiveDeferred: async (path, sequences) =>
      settlement.receiveDeferred(await resolve(path), sequences),
    close: () => locks.clear(),
  };
}
