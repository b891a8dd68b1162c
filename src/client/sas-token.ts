import { createHmac } from "node:crypto";

/**
 * Shared access signatures in the Service Bus form:
 * `SharedAccessSignature sr=<url-encoded resource URI>&sig=<signature>&se=<unix expiry>&skn=<rule>`,
 * where the signature is the base64 HMAC-SHA256, keyed with the rule's key as written (its
 * UTF-8 bytes, not base64-decoded), of the url-encoded URI, a newline and the expiry.
 */

/** The scheme word that starts a token in the `authorization` header. */
export const SAS_SCHEME = "SharedAccessSignature";

export interface SasTokenOptions {
  /**
   * What the token grants access to: the namespace ("sb://host:port/") or an entity below
   * it ("sb://host:port/orders"). The broker reads only the path.
   */
  resourceUri: string;
  /** The authorization rule whose key signs. */
  keyName: string;
  key: string;
  /** Expiry, in seconds since the Unix epoch. */
  expiresAtSeconds: number;
}

export function createSasToken(options: SasTokenOptions): string {
  if (options.key === "") throw new Error("A shared access token needs a key to sign with.");
  if (options.keyName === "") throw new Error("A shared access token needs the rule's name.");
  if (!Number.isFinite(options.expiresAtSeconds) || options.expiresAtSeconds <= 0) {
    throw new Error(
      `A shared access token's expiry must be a time in seconds since 1970, not ${options.expiresAtSeconds}.`,
    );
  }
  const sr = encodeURIComponent(options.resourceUri);
  const se = String(Math.floor(options.expiresAtSeconds));
  const sig = createHmac("sha256", options.key).update(`${sr}\n${se}`).digest("base64");
  return `${SAS_SCHEME} sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=${encodeURIComponent(options.keyName)}`;
}

/** The expiry (`se`, seconds since the epoch) a token states, or undefined if it has none. */
export function sasTokenExpiry(token: string): number | undefined {
  const fields = token.trim().replace(/^SharedAccessSignature\s+/i, "");
  const se = new URLSearchParams(fields).get("se");
  if (se === null || !/^\d+$/.test(se)) return undefined;
  return Number(se);
}

/** How long tokens a client mints are valid. */
export const TOKEN_LIFETIME_SECONDS = 3600;
/** A token this close to its expiry is replaced before the next call. */
export const RENEW_BEFORE_SECONDS = 300;

export interface SasTokenProviderOptions extends Omit<SasTokenOptions, "expiresAtSeconds"> {
  /** How long each minted token is valid. @default 3600 */
  lifetimeSeconds?: number | undefined;
}

/** Mints a token when asked and keeps it until it is close to its expiry. */
export class SasTokenProvider {
  private token: string | undefined;
  private expiresAtSeconds = 0;
  private readonly lifetimeSeconds: number;
  /** Five minutes, or half the lifetime of short-lived tokens (else each call would mint). */
  private readonly renewBeforeSeconds: number;

  constructor(private readonly options: SasTokenProviderOptions) {
    this.lifetimeSeconds = options.lifetimeSeconds ?? TOKEN_LIFETIME_SECONDS;
    if (!(this.lifetimeSeconds >= 1)) {
      throw new Error(`A token lifetime must be at least 1 second, not ${this.lifetimeSeconds}.`);
    }
    this.renewBeforeSeconds = Math.min(RENEW_BEFORE_SECONDS, this.lifetimeSeconds / 2);
  }

  /** A valid token, minted again when the kept one is close to its expiry. */
  current(nowMs = Date.now()): string {
    const now = nowMs / 1000;
    if (this.token === undefined || this.expiresAtSeconds - now < this.renewBeforeSeconds) {
      this.expiresAtSeconds = Math.floor(now) + this.lifetimeSeconds;
      this.token = createSasToken({
        resourceUri: this.options.resourceUri,
        keyName: this.options.keyName,
        key: this.options.key,
        expiresAtSeconds: this.expiresAtSeconds,
      });
    }
    return this.token;
  }
}
