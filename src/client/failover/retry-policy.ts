/**
 * Which calls a client with several broker addresses repeats on the next broker after the
 * connection to its broker failed while the call was under way ("broken": the broker may
 * have acted on it). A call that cannot have reached a broker ("unsent") is always repeated.
 *
 * One line per method, so a new method has to be placed here (the test of this table
 * fails on a method missing from it).
 */
import type { DescMethod } from "@bufbuild/protobuf";

/**
 * - "yes": repeating it changes nothing that the first attempt may have done, or what it
 *   did is undone by the store on its own (locks held through the dead broker expire).
 * - "with message ids": repeated only when every message carries a message id: a copy
 *   stored by the first attempt is then recognisable (dropped by duplicate detection, or
 *   seen by receivers under the same id). Without ids a repeat could store every message
 *   twice, unnoticed, so the caller gets the error and decides.
 * - "no": the caller gets the error (the next call goes to the next broker).
 */
export type AfterBrokenConnection = "yes" | "with message ids" | "no";

export const RETRY_AFTER_BROKEN_CONNECTION: Record<string, AfterBrokenConnection> = {
  // MessagingService
  Send: "with message ids",
  ScheduleMessages: "with message ids",
  Peek: "yes",
  // Lock tokens belong to the broker that delivered the message: another one answers
  // MESSAGE_LOCK_LOST, which is the truth after its broker died.
  RenewMessageLock: "yes",
  Settle: "no",
  // Locks a first attempt took stay with the dead broker until they expire; the repeat
  // answers MESSAGE_LOCKED for them.
  ReceiveDeferred: "yes",
  // A session a first attempt locked stays locked until its lock expires; the repeat
  // takes another session, or answers SESSION_CANNOT_BE_LOCKED for a named one.
  AcceptSession: "yes",
  // A session's calls belong to the broker it was accepted through: the SDK ties them to it
  // and never sends them elsewhere, and a channel that cannot tell must not either (going
  // on with a session through another broker leaves the dead one's deliveries stuck; see
  // docs/operations.md, "Broker failover").
  RenewSessionLock: "no",
  CloseSession: "no",
  GetSessionState: "no",
  SetSessionState: "no",
  ListSessions: "yes",
  // Reads without the lock.
  PeekSessionState: "yes",
  // Made to be repeated: a message the first attempt stored again is dropped as a duplicate
  // (docs/console.md, the broker RPCs), then its dead-letter copy is removed.
  ResubmitDeadLetteredMessages: "yes",
  // A repeat would also remove what was dead-lettered since, and answer another count.
  PurgeDeadLetteredMessages: "no",
  CancelScheduledMessages: "yes",
  // Would send the request a second time.
  RequestReply: "no",
  // Streams are reopened by the receiver or settler that owns them, never here.
  ReceiveStream: "no",
  SendStream: "no",
  SettleStream: "no",
  // AdminService: reads and updates (which set the same properties again) repeat; a
  // repeated create or delete would answer ENTITY_ALREADY_EXISTS / ENTITY_NOT_FOUND for
  // the first attempt's work, and a repeated key regeneration would change the key twice.
  CreateQueue: "no",
  GetQueue: "yes",
  ListQueues: "yes",
  UpdateQueue: "yes",
  DeleteQueue: "no",
  CreateTopic: "no",
  GetTopic: "yes",
  ListTopics: "yes",
  UpdateTopic: "yes",
  DeleteTopic: "no",
  CreateSubscription: "no",
  GetSubscription: "yes",
  ListSubscriptions: "yes",
  UpdateSubscription: "yes",
  DeleteSubscription: "no",
  CreateRule: "no",
  ListRules: "yes",
  DeleteRule: "no",
  CreateAuthorizationRule: "no",
  GetAuthorizationRule: "yes",
  ListAuthorizationRules: "yes",
  UpdateAuthorizationRule: "yes",
  RegenerateAuthorizationRuleKey: "no",
  DeleteAuthorizationRule: "no",
};

/** Whether the call `input` of `method` is repeated after a broken connection. */
export function retriesAfterBrokenConnection(method: DescMethod, input: unknown): boolean {
  switch (RETRY_AFTER_BROKEN_CONNECTION[method.name] ?? "no") {
    case "yes":
      return true;
    case "with message ids": {
      const messages = (input as { messages?: readonly { messageId?: string }[] }).messages ?? [];
      return messages.length > 0 && messages.every((m) => (m.messageId ?? "") !== "");
    }
    default:
      return false;
  }
}
