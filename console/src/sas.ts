/**
 * Connection strings and shared access tokens in the browser: the same token form as
 * src/client/sas-token.ts, signed with WebCrypto's HMAC-SHA256.
 */

export interface ConnectionString {
  /** "sb://host:port/": the namespace the token is for. */
  endpoint: string;
  keyName: string;
  key: string;
}

/** Parses `Endpoint=sb://host:port/;SharedAccessKeyName=…;SharedAccessKey=…`. */
export function parseConnectionString(text: string): ConnectionString {
  const fields = new Map<string, string>();
  for (const part of text.trim().split(";")) {
    const at = part.indexOf("=");
    if (at > 0) fields.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  const endpoint = fields.get("endpoint")?.split(",")[0];
  const keyName = fields.get("sharedaccesskeyname");
  const key = fields.get("sharedaccesskey");
  if (!endpoint || !keyName || !key) {
    throw new Error("A connection string needs Endpoint, SharedAccessKeyName and SharedAccessKey.");
  }
  return { endpoint: endpoint.endsWith("/") ? endpoint : `${endpoint}/`, keyName, key };
}

/** A token for the namespace, valid for `lifetimeSeconds`. */
export async function createSasToken(
  connection: ConnectionString,
  lifetimeSeconds: number,
): Promise<{ token: string; expiresAt: number }> {
  const expiresAt = Math.floor(Date.now() / 1000) + lifetimeSeconds;
  const sr = encodeURIComponent(connection.endpoint);
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(connection.key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const signature = await crypto.subtle.sign("HMAC", key, encoder.encode(`${sr}\n${expiresAt}`));
  const sig = btoa(String.fromCharCode(...new Uint8Array(signature)));
  const token = `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${expiresAt}&skn=${encodeURIComponent(connection.keyName)}`;
  return { token, expiresAt };
}
