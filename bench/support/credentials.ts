/**
 * The benchmark runs its brokers as users do, with authorization on: each run picks a root
 * key, hands it to the brokers it starts (SESSIONBUS_ROOT_KEY), and its clients sign tokens
 * with it through the SDK's token provider (one HMAC an hour; the broker caches the verdict).
 */
import { randomBytes } from "node:crypto";
import type { Interceptor } from "@connectrpc/connect";
import { SasTokenProvider } from "../../src/client/sas-token.js";

export const BENCH_ROOT_KEY = randomBytes(32).toString("base64");
const ROOT_RULE = "RootManageSharedAccessKey";

const provider = new SasTokenProvider({
  resourceUri: "sb://127.0.0.1/",
  keyName: ROOT_RULE,
  key: BENCH_ROOT_KEY,
});

/** A valid namespace token of the root rule. */
export function benchToken(): string {
  return provider.current();
}

/** Adds the root token to every call of a Connect transport. */
export const benchTokenInterceptor: Interceptor = (next) => async (request) => {
  request.header.set("authorization", benchToken());
  return next(request);
};
