import { createHmac } from "node:crypto";

/**
 * Shared access signatures in the Service Bus form:
 * `SharedAccessSignature sr=<url-encoded resource URI>&sig=<signature>&se=<unix expiry>&skn=<rule>`,
 * where the signature is the base64 HMAC-SHA256, keyed with the rule's key as written, of the
 * url-encoded URI, a newline and the expiry.
 */

export interface SasTokenOptions {
  /** What the token grants access to: the namespace ("sb://host:port/") or an entity below it. */
  resourceUri: string;
  /** The authorization rule whose key signs. */
  keyName: string;
  key: string;
  /** Expiry, in seconds since the Unix epoch. */
  expiresAtSeconds: number;
}

export function createSasToken(options: SasTokenOptions): string {
  const sr = encodeURIComponent(options.resourceUri);
  const se = String(Math.floor(options.expiresAtSeconds));
  const sig = createHmac("sha256", options.key).update(`${sr}\n${se}`).digest("base64");
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=${encodeURIComponent(options.keyName)}`;
}

/** How long tokens a client mints are valid. */
export const TOKEN_LIFETIME_SECONDS = 3600;
/** A token this close to its expiry is replaced before the next call. */
const RENEW_BEFORE_SECONDS = 300;

/** Mints a token when asked and keeps it until it is close to its expiry. */
export class SasTokenProvider {
  private token: string | undefined;
  private expiresAtSeconds = 0;

  constructor(
    private readonly options: Omit<SasTokenOptions, "expiresAtSeconds"> & {
      lifetimeSeconds?: number;
    },
  ) {}

  /** A valid token, minted again when the kept one has less than five minutes left. */
  current(nowMs = Date.now()): string {
    const now = nowMs / 1000;
    if (this.token === undefined || this.expiresAtSeconds - now < RENEW_BEFORE_SECONDS) {
      this.expiresAtSeconds =
        Math.floor(now) + (this.options.lifetimeSeconds ?? TOKEN_LIFETIME_SECONDS);
      this.token = createSasToken({ ...this.options, expiresAtSeconds: this.expiresAtSeconds });
    }
    return this.token;
  }
}
