import { TokenInvalidError } from "../broker/errors.js";
import { resourcePathOfUri } from "./resource-path.js";

/** A token's fields as sent, and what the broker reads from them. */
export interface ParsedToken {
  /** `sr` exactly as in the token (url-encoded): what the signature covers. */
  signedResource: string;
  /** The path `sr` points at, normalized ("" for the namespace). */
  resourcePath: string;
  /** The signature's bytes. */
  signature: Buffer;
  /** `se`, as written (signed) and as a number of seconds. */
  expiry: string;
  expiresAtSeconds: number;
  /** `skn`: the rule whose key signed. */
  keyName: string;
}

/** Longest authorization value read; real tokens are a few hundred characters. */
export const MAX_TOKEN_LENGTH = 4096;
const PREFIX = "SharedAccessSignature ";

/** Reads `SharedAccessSignature sr=…&sig=…&se=…&skn=…`; throws TokenInvalidError. */
export function parseSasToken(token: string): ParsedToken {
  if (token.length > MAX_TOKEN_LENGTH) {
    throw new TokenInvalidError(`it is over ${MAX_TOKEN_LENGTH} characters long`);
  }
  if (!token.startsWith(PREFIX)) {
    throw new TokenInvalidError('it does not start with "SharedAccessSignature "');
  }
  const fields = new Map<string, string>();
  for (const part of token.slice(PREFIX.length).trim().split("&")) {
    const at = part.indexOf("=");
    if (at <= 0) throw new TokenInvalidError(`"${clip(part)}" is not a name=value field`);
    const name = part.slice(0, at);
    if (fields.has(name)) throw new TokenInvalidError(`it has field "${clip(name)}" twice`);
    fields.set(name, part.slice(at + 1));
  }
  const signedResource = required(fields, "sr");
  const sig = required(fields, "sig");
  const expiry = required(fields, "se");
  const skn = required(fields, "skn");
  if (!/^\d{1,12}$/.test(expiry)) {
    throw new TokenInvalidError("se must be the expiry in seconds since 1970");
  }
  const signature = Buffer.from(decode(sig, "sig"), "base64");
  if (signature.length !== 32) {
    throw new TokenInvalidError("sig is not a base64 HMAC-SHA256");
  }
  return {
    signedResource,
    resourcePath: resourcePathOfUri(decode(signedResource, "sr")),
    signature,
    expiry,
    expiresAtSeconds: Number(expiry),
    keyName: decode(skn, "skn"),
  };
}

function required(fields: Map<string, string>, name: string): string {
  const value = fields.get(name);
  if (value === undefined || value === "") throw new TokenInvalidError(`it has no ${name}`);
  return value;
}

function decode(value: string, field: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new TokenInvalidError(`${field} is not url-encoded correctly`);
  }
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}
