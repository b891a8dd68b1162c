import { randomBytes } from "node:crypto";

/** A user and password nats-server requires of every client connection. */
export interface NatsCredentials {
  user: string;
  password: string;
}

const SECRET_BYTES = 32;

/**
 * Fresh credentials for one run of the embedded nats-server: 32 random bytes each, base64url
 * (no quoting needed in nats-server's config syntax). The user name is random too, so it
 * gives nothing away either.
 */
export function generateNatsCredentials(): NatsCredentials {
  return {
    user: `sessionbus-${randomBytes(SECRET_BYTES).toString("base64url")}`,
    password: randomBytes(SECRET_BYTES).toString("base64url"),
  };
}
