import { createContextKey, type HandlerContext } from "@connectrpc/connect";

/** Checks one frame of a stream against the stream's token; throws a BrokerError if refused. */
export type FrameAuthorizer = (entityPath: string) => void;

/** Set by the call guard on streams whose frames name their own entity; a no-op without auth. */
export const frameAuthorizer = createContextKey<FrameAuthorizer>(() => undefined, {
  description: "frame authorizer",
});

/** Throws unless the stream's token grants the method's right on `entityPath`. */
export function authorizeFrame(context: HandlerContext, entityPath: string): void {
  context.values.get(frameAuthorizer)(entityPath);
}
