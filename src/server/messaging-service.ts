import { durationMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { MessagingService, ReceiveMode } from "../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import type { Broker } from "../broker/broker.js";
import { withErrorMapping } from "./with-error-mapping.js";

export function registerMessagingService(
  router: ConnectRouter,
  broker: Broker,
  shutdown: AbortSignal,
): void {
  router.service(
    MessagingService,
    withErrorMapping(MessagingService, {
      async send(req) {
        return { results: await broker.send(req.entityPath, req.messages) };
      },
      async peek(req) {
        return {
          messages: await broker.peek(req.entityPath, req.fromSequenceNumber, req.maxMessages),
        };
      },
      async *receiveStream(req, ctx) {
        // The stream ends when the client cancels or the server shuts down.
        const signal = AbortSignal.any([ctx.signal, shutdown]);
        const messages = broker.receive(req.entityPath, {
          receiveAndDelete: req.receiveMode === ReceiveMode.RECEIVE_AND_DELETE,
          prefetch: req.prefetch,
          maxMessages: req.maxMessages,
          maxWaitMs: req.maxWait ? durationMs(req.maxWait) : 0,
          signal,
        });
        for await (const message of messages) yield { event: { case: "message", value: message } };
      },
      async settle(req) {
        await broker.settle(req.entityPath, req.lockTokens, {
          disposition: req.disposition,
          deadLetterReason: req.deadLetterReason,
          deadLetterDescription: req.deadLetterDescription,
        });
        return {};
      },
      async renewMessageLock(req) {
        return { lockedUntil: await broker.renewMessageLocks(req.entityPath, req.lockTokens) };
      },
      async receiveDeferred(req) {
        return { messages: await broker.receiveDeferred(req.entityPath, req.sequenceNumbers) };
      },
    }),
  );
}
