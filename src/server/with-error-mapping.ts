import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { toConnectError } from "./error-mapping.js";

/**
 * Wraps every method of a service implementation so that whatever it throws (also while a
 * server stream is running) reaches the client as a mapped ConnectError.
 */
export function withErrorMapping<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
): ServiceImpl<S> {
  const wrapped: Record<string, unknown> = {};
  for (const method of service.methods) {
    const original = (impl as unknown as Record<string, (...args: unknown[]) => unknown>)[
      method.localName
    ];
    if (!original) continue;
    wrapped[method.localName] =
      method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming"
        ? async function* (...args: unknown[]) {
            try {
              yield* original(...args) as AsyncIterable<unknown>;
            } catch (error) {
              throw toConnectError(error);
            }
          }
        : async (...args: unknown[]) => {
            try {
              return await original(...args);
            } catch (error) {
              throw toConnectError(error);
            }
          };
  }
  return wrapped as unknown as ServiceImpl<S>;
}
