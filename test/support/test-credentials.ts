/**
 * The credentials of the test suite's brokers: every broker a test starts (in-process or as
 * a process) runs with auth on and this root key, and test clients send tokens signed with
 * it. Tokens are minted here with node:crypto, independently of the SDK (src/client), so the
 * tests check the token format as any client sees it.
 */
import { createHmac } from "node:crypto";
import type { Interceptor } from "@connectrpc/connect";

/** RootManageSharedAccessKey's primary key in tests (SESSIONBUS_ROOT_KEY). */
export const TEST_ROOT_KEY = "c2Vzc2lvbmJ1cy10ZXN0LXJvb3Qta2V5LTAxMjM0NTY3ODk=";
export const ROOT_RULE = "RootManageSharedAccessKey";

export interface TokenOptions {
  /** The rule whose key signs. @default RootManageSharedAccessKey */
  keyName?: string;
  /** @default TEST_ROOT_KEY */
  key?: string;
  /** Entity path the token is for; "" is the namespace. @default "" */
  entityPath?: string;
  /** Expiry in seconds since 1970. @default a day from now */
  expiresAtSeconds?: number;
  /** Host part of the resource URI (the broker ignores it). @default "127.0.0.1:50051" */
  host?: string;
}

/** `SharedAccessSignature sr=…&sig=…&se=…&skn=…`, signed as Service Bus SDKs sign. */
export function mintToken(options: TokenOptions = {}): string {
  const resourceUri = `sb://${options.host ?? "127.0.0.1:50051"}/${options.entityPath ?? ""}`;
  const sr = encodeURIComponent(resourceUri);
  const se = String(options.expiresAtSeconds ?? Math.floor(Date.now() / 1000) + 86_400);
  const signature = createHmac("sha256", options.key ?? TEST_ROOT_KEY)
    .update(`${sr}\n${se}`)
    .digest("base64");
  const skn = encodeURIComponent(options.keyName ?? ROOT_RULE);
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(signature)}&se=${se}&skn=${skn}`;
}

let root: { token: string; until: number } | undefined;

/** A namespace token of the root rule, reused while it has more than an hour left. */
export function rootToken(): string {
  const now = Date.now() / 1000;
  if (!root || root.until - now < 3600) {
    const until = Math.floor(now) + 86_400;
    root = { token: mintToken({ expiresAtSeconds: until }), until };
  }
  return root.token;
}

/**
 * The root rule's connection string for a broker at `url` ("http://host:port"), or for
 * several brokers on one store (a comma-separated Endpoint list).
 */
export function testConnectionString(url: string | readonly string[]): string {
  const urls = typeof url === "string" ? [url] : url;
  const endpoints = urls.map((each) => `sb://${new URL(each).host}/`).join(",");
  const plaintext = urls.every((each) => new URL(each).protocol === "http:")
    ? ";UseDevelopmentEmulator=true"
    : "";
  return `Endpoint=${endpoints};SharedAccessKeyName=${ROOT_RULE};SharedAccessKey=${TEST_ROOT_KEY}${plaintext}`;
}

/** A Connect interceptor sending the root token, for Connect and gRPC-Web test transports. */
export const rootTokenInterceptor: Interceptor = (next) => async (request) => {
  request.header.set("authorization", rootToken());
  return next(request);
};
