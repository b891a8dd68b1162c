import { createHash, timingSafeEqual } from "node:crypto";
import { normalizeResourcePath } from "./resource-path.js";
import { requireRight, type TokenVerifier } from "./token-verifier.js";

/** Decides whether the `authorization` header of a `/metrics` request may read the metrics. */
export type MetricsAccess = (authorization: string | undefined) => Promise<boolean>;

/**
 * Who may read `/metrics` (docs/security.md, threat model): with authorization off, anyone
 * who reaches the port; with it on, a request carrying `Bearer <SESSIONBUS_METRICS_TOKEN>`
 * (a secret that reads the metrics and nothing else, for Prometheus), or a shared access
 * token with Manage on the namespace (an operator with curl). The metrics name every
 * entity and show its traffic, so a token for one entity is not enough.
 */
export function metricsAccess(
  verifier: TokenVerifier | undefined,
  metricsToken: string | undefined,
): MetricsAccess {
  if (verifier === undefined) return async () => true;
  const expected = metricsToken === undefined ? undefined : digest(metricsToken);
  return async (authorization) => {
    if (authorization === undefined || authorization === "") return false;
    if (/^bearer /i.test(authorization)) {
      // Digests of equal length: the comparison takes the same time whatever is sent.
      return (
        expected !== undefined && timingSafeEqual(digest(authorization.slice(7).trim()), expected)
      );
    }
    try {
      const principal = verifier.cached(authorization) ?? (await verifier.verify(authorization));
      requireRight(principal, "Manage", normalizeResourcePath(""), "");
      return true;
    } catch {
      return false;
    }
  };
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
