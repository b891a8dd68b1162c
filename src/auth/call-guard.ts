import type { MethodImplSpec } from "@connectrpc/connect";
import { TokenExpiredError, TokenMissingError } from "../broker/errors.js";
import { toConnectError } from "../server/error-mapping.js";
import { GrpcCallContext } from "../server/grpc-call-context.js";
import type { RouteTable } from "../server/route-table.js";
import { frameAuthorizer } from "./frame-authorization.js";
import { accessOf, type MethodAccess, type Need } from "./method-access.js";
import { normalizeResourcePath } from "./resource-path.js";
import { type Principal, requireRight, type TokenVerifier } from "./token-verifier.js";

type ImplOf<K extends MethodImplSpec["kind"]> = Extract<MethodImplSpec, { kind: K }>["impl"];
type HandlerContext = Parameters<ImplOf<"unary">>[1];

/**
 * The route table with every method behind its access rule (src/auth/method-access.ts):
 * the token in the `authorization` header or metadata is verified and the rights the call
 * needs are checked before the handler runs. Without a verifier (auth off) the methods are
 * served as they are — but each must still have an access rule.
 */
export function guardRoutes(routes: RouteTable, verifier: TokenVerifier | undefined): RouteTable {
  const methods = routes.methods.map((spec) => {
    const access = accessOf(spec.method);
    return verifier === undefined || access.kind === "public"
      ? spec
      : guarded(spec, access, verifier);
  });
  return { ...routes, methods };
}

function guarded(
  spec: MethodImplSpec,
  access: MethodAccess,
  verifier: TokenVerifier,
): MethodImplSpec {
  const checkNeeds = (principal: Principal, request: unknown) => {
    if (access.kind !== "call") return;
    for (const need of (access.needs as (request: unknown) => Need[])(request)) {
      requireRight(principal, need.right, normalizeResourcePath(need.path), need.path);
    }
  };
  const check = async (request: unknown, context: HandlerContext): Promise<Principal> => {
    const principal = await authenticate(context, verifier);
    checkNeeds(principal, request);
    return principal;
  };
  switch (spec.kind) {
    case "unary": {
      const impl = spec.impl;
      // Not async: a known token is checked without a promise of its own, the common case.
      const wrapped: ImplOf<"unary"> = (request, context) => {
        let principal: Principal | undefined;
        try {
          principal = verifier.cached(requireToken(context));
          if (principal) checkNeeds(principal, request);
        } catch (error) {
          return Promise.reject(toConnectError(error));
        }
        if (principal) return impl(request, context);
        return check(request, context).then(
          () => impl(request, context),
          (error: unknown) => Promise.reject(toConnectError(error)),
        );
      };
      return { ...spec, impl: wrapped };
    }
    case "server_streaming": {
      const impl = spec.impl;
      const wrapped: ImplOf<"server_streaming"> = async function* (request, context) {
        try {
          await check(request, context);
        } catch (error) {
          throw toConnectError(error);
        }
        yield* impl(request, context);
      };
      return { ...spec, impl: wrapped };
    }
    case "bidi_streaming": {
      const impl = spec.impl;
      const right = access.kind === "frames" ? access.right : undefined;
      const wrapped: ImplOf<"bidi_streaming"> = async function* (requests, context) {
        let principal: Principal;
        try {
          principal = await check(undefined, context);
        } catch (error) {
          throw toConnectError(error);
        }
        if (right !== undefined) {
          context.values.set(frameAuthorizer, (entityPath) => {
            // The token may expire while the stream is open: each frame checks it again.
            if (principal.expiresAtMs <= Date.now()) {
              throw new TokenExpiredError(principal.expiresAtMs / 1000);
            }
            requireRight(principal, right, normalizeResourcePath(entityPath), entityPath);
          });
        }
        yield* impl(requests, context);
      };
      return { ...spec, impl: wrapped };
    }
    case "client_streaming":
      throw new Error(`${spec.method.name}: client streams are not guarded (the API has none)`);
  }
}

async function authenticate(context: HandlerContext, verifier: TokenVerifier): Promise<Principal> {
  const token = requireToken(context);
  return verifier.cached(token) ?? (await verifier.verify(token));
}

function requireToken(context: HandlerContext): string {
  const token = tokenOf(context);
  if (token === undefined || token === "") throw new TokenMissingError();
  return token;
}

function tokenOf(context: HandlerContext): string | undefined {
  // grpc-js metadata is read directly: building Headers for it costs more than the check.
  if (context instanceof GrpcCallContext) return context.metadataValue("authorization");
  return context.requestHeader.get("authorization") ?? undefined;
}
