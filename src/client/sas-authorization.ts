/**
 * Shared access authorization on the client side: where each call's token comes from (a
 * connection string's key, a token in the connection string, or a token of the caller's),
 * and the two ways of putting it into the `authorization` header of every call, unary and
 * streaming: a wrapper around any Transport (what createSessionBusClient uses), and a
 * Connect interceptor for clients built directly on the generated code.
 */
import { Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import { type ConnectionString, parseConnectionString } from "./connection-string.js";
import { RENEW_BEFORE_SECONDS, SAS_SCHEME, SasTokenProvider, sasTokenExpiry } from "./sas-token.js";

/** The header (gRPC metadata key) the broker reads a token from. */
export const AUTHORIZATION_HEADER = "authorization";

/** A token as given, or a function the client asks for one when it needs one. */
export type SharedAccessSignatureSource = string | (() => string | Promise<string>);

export interface SasCredentialOptions {
  /**
   * A connection string (`Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…`): tokens
   * for its namespace (or its `EntityPath`) are minted from the key, each valid for an hour
   * and replaced five minutes before it runs out. One with a `SharedAccessSignature` sends
   * that token.
   */
  connectionString?: string | ConnectionString | undefined;
  /**
   * A token minted elsewhere (`SharedAccessSignature sr=…&sig=…&se=…&skn=…`), or a function
   * returning one. The function is called before the first call, and again before a call
   * whenever the token it last gave expires (`se`) within five minutes; a token without
   * `se` is asked for before every call. Concurrent calls share one pending request.
   */
  sharedAccessSignature?: SharedAccessSignatureSource | undefined;
}

/** What a transport takes as a call's request header. */
type HeaderInit = Parameters<Transport["unary"]>[3];

/** Gives the `authorization` header value of the next call. */
export type TokenSource = () => Promise<string>;

/**
 * The token source of the options, or undefined when they name no credential. Throws when
 * they name two (a connection string and a sharedAccessSignature) or the connection string
 * does not parse.
 */
export function createTokenSource(options: SasCredentialOptions): TokenSource | undefined {
  const { connectionString, sharedAccessSignature } = options;
  if (connectionString !== undefined && sharedAccessSignature !== undefined) {
    throw new Error(
      "Pass either connectionString or sharedAccessSignature, not both (url sets the address when you use a token of your own).",
    );
  }
  if (sharedAccessSignature !== undefined) {
    if (typeof sharedAccessSignature === "string") {
      const token = asHeaderValue(sharedAccessSignature);
      return () => Promise.resolve(token);
    }
    return cachedByExpiry(sharedAccessSignature);
  }
  if (connectionString === undefined) return undefined;
  const parsed =
    typeof connectionString === "string"
      ? parseConnectionString(connectionString)
      : connectionString;
  if (parsed.sharedAccessSignature !== undefined) {
    const token = asHeaderValue(parsed.sharedAccessSignature);
    return () => Promise.resolve(token);
  }
  const { keyName, key, resourceUri } = parsed;
  if (keyName === undefined || key === undefined) {
    throw new Error("The connection string has neither a key nor a SharedAccessSignature.");
  }
  const provider = new SasTokenProvider({ resourceUri, keyName, key });
  return () => Promise.resolve(provider.current());
}

/**
 * A transport that sends every call, unary or streaming, through `transport` with the
 * `authorization` header set from `token`. A token source that fails fails the call with
 * UNAUTHENTICATED, its error as the cause.
 */
export function withAuthorization(transport: Transport, token: TokenSource): Transport {
  const headerWithToken = async (header: HeaderInit, signal?: AbortSignal) => {
    const withToken = new Headers(header);
    withToken.set(AUTHORIZATION_HEADER, await tokenFor(token, signal));
    return withToken;
  };
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      return transport.unary(
        method,
        signal,
        timeoutMs,
        await headerWithToken(header, signal),
        input,
        contextValues,
      );
    },
    async stream(method, signal, timeoutMs, header, input, contextValues) {
      return transport.stream(
        method,
        signal,
        timeoutMs,
        await headerWithToken(header, signal),
        input,
        contextValues,
      );
    },
  };
}

/**
 * A Connect interceptor that sets the `authorization` header of every call, for clients
 * built with `createClient` on a transport of your own (gRPC, Connect or gRPC-Web):
 *
 *     createConnectTransport({ baseUrl, interceptors: [sasInterceptor(connectionString)] })
 *
 * Takes a connection string, or the options of createSessionBusClient's credentials.
 */
export function sasInterceptor(credential: string | SasCredentialOptions): Interceptor {
  const token = createTokenSource(
    typeof credential === "string" ? { connectionString: credential } : credential,
  );
  if (token === undefined) {
    throw new Error("sasInterceptor needs a connectionString or a sharedAccessSignature.");
  }
  return (next) => async (request) => {
    request.header.set(AUTHORIZATION_HEADER, await tokenFor(token, request.signal));
    return next(request);
  };
}

/** The token, or a ConnectError (UNAUTHENTICATED) saying why there is none. */
async function tokenFor(token: TokenSource, signal: AbortSignal | undefined): Promise<string> {
  signal?.throwIfAborted();
  try {
    return await token();
  } catch (error) {
    throw new ConnectError(
      `No shared access token for the call: ${error instanceof Error ? error.message : String(error)}`,
      Code.Unauthenticated,
      undefined,
      undefined,
      error,
    );
  }
}

/** Calls `source` only when the token it gave last is missing or about to expire. */
function cachedByExpiry(source: () => string | Promise<string>): TokenSource {
  let kept: { token: string; expiresAtSeconds: number | undefined } | undefined;
  let pending: Promise<string> | undefined;
  const fresh = () =>
    kept?.expiresAtSeconds !== undefined &&
    kept.expiresAtSeconds - Date.now() / 1000 >= RENEW_BEFORE_SECONDS;
  return async () => {
    if (kept !== undefined && fresh()) return kept.token;
    pending ??= (async () => {
      try {
        const token = asHeaderValue(await source());
        kept = { token, expiresAtSeconds: sasTokenExpiry(token) };
        return token;
      } finally {
        pending = undefined;
      }
    })();
    return pending;
  };
}

/** The token as the header carries it: trimmed, with the scheme word in front. */
function asHeaderValue(token: string): string {
  if (typeof token !== "string" || token.trim() === "") {
    throw new Error("The shared access signature is empty.");
  }
  const trimmed = token.trim();
  return trimmed.startsWith(`${SAS_SCHEME} `) ? trimmed : `${SAS_SCHEME} ${trimmed}`;
}
