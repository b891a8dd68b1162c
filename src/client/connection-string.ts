/**
 * Connection strings in the Service Bus form:
 * `Endpoint=sb://host:port/;SharedAccessKeyName=<rule>;SharedAccessKey=<key>`, or with a
 * ready-made `SharedAccessSignature=<token>` instead of the key pair.
 * `UseDevelopmentEmulator=true` (as in the Service Bus emulator's strings) means the broker
 * serves plaintext; without it, clients use TLS.
 */

export interface ConnectionString {
  /** The endpoint as written, e.g. "sb://127.0.0.1:50051/". */
  endpoint: string;
  /** The broker's gRPC address for clients: "http://host:port" or "https://host:port". */
  url: string;
  /** Where tokens point (`sr`): the endpoint, for the whole namespace. */
  resourceUri: string;
  /** Rule name and key, when the string carries them. */
  keyName?: string;
  key?: string;
  /** A token to send as is, when the string carries one instead of a key. */
  sharedAccessSignature?: string;
  /** Whether the broker serves TLS. */
  tls: boolean;
}

/** The port a `sb://` endpoint without one means: the broker's default gRPC port. */
const DEFAULT_GRPC_PORT = 50051;

/** Reads a connection string; throws an Error naming what is wrong (never echoing the key). */
export function parseConnectionString(text: string): ConnectionString {
  const fields = new Map<string, string>();
  for (const part of text.split(";")) {
    const trimmed = part.trim();
    if (trimmed === "") continue;
    const at = trimmed.indexOf("=");
    if (at <= 0) {
      throw new Error(
        `The connection string has a part without "name=value" ("${clipForError(trimmed)}"); expected Endpoint=sb://host:port/;SharedAccessKeyName=…;SharedAccessKey=…`,
      );
    }
    fields.set(trimmed.slice(0, at).trim().toLowerCase(), trimmed.slice(at + 1).trim());
  }
  const endpoint = fields.get("endpoint");
  if (!endpoint) {
    throw new Error("The connection string has no Endpoint (e.g. Endpoint=sb://127.0.0.1:50051/).");
  }
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    throw new Error(`The connection string's Endpoint "${endpoint}" is not a URL.`);
  }
  const plaintext = (fields.get("usedevelopmentemulator") ?? "").toLowerCase() === "true";
  const scheme = parsed.protocol.replace(/:$/, "");
  if (!["sb", "http", "https"].includes(scheme)) {
    throw new Error(`The connection string's Endpoint must start with sb://, not ${scheme}://.`);
  }
  const tls = scheme === "https" || (scheme === "sb" && !plaintext);
  const port = parsed.port || String(scheme === "sb" ? DEFAULT_GRPC_PORT : tls ? 443 : 80);
  const keyName = fields.get("sharedaccesskeyname");
  const key = fields.get("sharedaccesskey");
  const sharedAccessSignature = fields.get("sharedaccesssignature");
  if (sharedAccessSignature === undefined && (keyName === undefined || key === undefined)) {
    throw new Error(
      "The connection string needs SharedAccessKeyName and SharedAccessKey (or a SharedAccessSignature).",
    );
  }
  return {
    endpoint,
    url: `${tls ? "https" : "http"}://${parsed.hostname}:${port}`,
    resourceUri: `sb://${parsed.hostname}:${port}/`,
    ...(keyName === undefined ? {} : { keyName }),
    ...(key === undefined ? {} : { key }),
    ...(sharedAccessSignature === undefined ? {} : { sharedAccessSignature }),
    tls,
  };
}

/** Writes the connection string of a rule for a broker at `host:port`. */
export function formatConnectionString(options: {
  host: string;
  port: number;
  keyName: string;
  key: string;
  tls: boolean;
}): string {
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  const plaintext = options.tls ? "" : ";UseDevelopmentEmulator=true";
  return `Endpoint=sb://${host}:${options.port}/;SharedAccessKeyName=${options.keyName};SharedAccessKey=${options.key}${plaintext}`;
}

function clipForError(text: string): string {
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}
