/**
 * Connection strings in the Service Bus form:
 * `Endpoint=sb://host:port/;SharedAccessKeyName=<rule>;SharedAccessKey=<key>`, or with a
 * ready-made `SharedAccessSignature=<token>` instead of the key pair. `EntityPath=<queue or
 * topic>` narrows the tokens to that entity (needed for a rule that lives on an entity).
 * `UseDevelopmentEmulator=true` (as in the Service Bus emulator's strings) means the broker
 * serves plaintext; without it, clients use TLS.
 *
 * Several brokers on one store take a comma-separated list of endpoints,
 * `Endpoint=sb://a:50051/,sb://b:50051/`: clients use the first and move to the next when
 * the connection to theirs fails (see docs/operations.md, "Broker failover"). Tokens point
 * at the first endpoint; brokers read only the path of a token's resource, so one token is
 * good on every broker of the namespace.
 *
 * Nothing here ever puts a key or a token into an error message.
 */

export interface ConnectionString {
  /** The endpoint as written, e.g. "sb://127.0.0.1:50051/" (or a comma-separated list). */
  endpoint: string;
  /**
   * The broker's gRPC address for clients: "http://host:port" or "https://host:port"; of
   * the first endpoint when there are several.
   */
  url: string;
  /** Every endpoint's gRPC address, in the order written (one for a single endpoint). */
  urls: string[];
  /** Host name or address of the (first) endpoint (IPv6 in brackets, as in a URL). */
  host: string;
  port: number;
  /** The entity the string is for (`EntityPath`), when it names one. */
  entityPath?: string;
  /**
   * Where tokens point (`sr`): the namespace, "sb://host:port/", or with `EntityPath`
   * "sb://host:port/<entity path>" (host and port of the first endpoint).
   */
  resourceUri: string;
  /** Rule name and key, when the string carries them (both or neither). */
  keyName?: string;
  key?: string;
  /** A token to send as is, when the string carries one instead of a key. */
  sharedAccessSignature?: string;
  /** Whether the broker serves TLS (false with `UseDevelopmentEmulator=true`). */
  tls: boolean;
}

/** The port a `sb://` endpoint without one means: the broker's default gRPC port. */
const DEFAULT_GRPC_PORT = 50051;

/** The fields a connection string may hold, by their lower-cased names. */
const FIELDS: Record<string, string> = {
  endpoint: "Endpoint",
  sharedaccesskeyname: "SharedAccessKeyName",
  sharedaccesskey: "SharedAccessKey",
  sharedaccesssignature: "SharedAccessSignature",
  entitypath: "EntityPath",
  usedevelopmentemulator: "UseDevelopmentEmulator",
};

const EXAMPLE = "Endpoint=sb://host:port/;SharedAccessKeyName=<rule>;SharedAccessKey=<key>";

/**
 * Reads a connection string. Field names are case-insensitive; fields other than the ones
 * above are ignored, as Service Bus clients do. Throws an Error naming what is wrong, never
 * echoing a key or token.
 */
export function parseConnectionString(text: string): ConnectionString {
  const fields = new Map<string, string>();
  const parts = text.split(";");
  for (const [index, part] of parts.entries()) {
    const trimmed = part.trim();
    if (trimmed === "") continue;
    const at = trimmed.indexOf("=");
    // The part may be a pasted key: say where it is, not what it says.
    if (at <= 0) {
      throw new Error(
        `Part ${index + 1} of the connection string is not "Name=value"; expected ${EXAMPLE}.`,
      );
    }
    const name = trimmed.slice(0, at).trim().toLowerCase();
    if (!(name in FIELDS)) continue;
    if (fields.has(name)) {
      throw new Error(`The connection string has ${FIELDS[name]} twice.`);
    }
    fields.set(name, trimmed.slice(at + 1).trim());
  }

  const endpoint = fields.get("endpoint");
  if (!endpoint) {
    throw new Error(`The connection string has no Endpoint; expected ${EXAMPLE}.`);
  }
  const emulator = (fields.get("usedevelopmentemulator") ?? "false").toLowerCase();
  if (emulator !== "true" && emulator !== "false") {
    throw new Error(
      `The connection string's UseDevelopmentEmulator is "${emulator}"; write true (plaintext) or false (TLS).`,
    );
  }
  const endpoints = endpoint
    .split(",")
    .map((each) => parseEndpoint(each.trim(), emulator === "true"));
  const [first] = endpoints;
  if (first === undefined || endpoints.some((each) => each.tls !== first.tls)) {
    throw new Error(
      `The connection string's endpoints "${endpoint}" mix TLS (https://, or sb:// without UseDevelopmentEmulator=true) and plaintext; all brokers of one namespace serve the same.`,
    );
  }
  const { tls, host, port } = first;
  const namespaceUri = `sb://${host}:${port}/`;

  const entityPath = fields.get("entitypath")?.replace(/^\/+|\/+$/g, "");
  const keyName = fields.get("sharedaccesskeyname");
  const key = fields.get("sharedaccesskey");
  const sharedAccessSignature = fields.get("sharedaccesssignature");
  if (sharedAccessSignature !== undefined) {
    if (keyName !== undefined || key !== undefined) {
      throw new Error(
        "The connection string has both a SharedAccessSignature and a SharedAccessKeyName/SharedAccessKey; keep one of the two.",
      );
    }
    if (sharedAccessSignature === "") {
      throw new Error("The connection string's SharedAccessSignature is empty.");
    }
  } else if (!keyName || !key) {
    const missing = [
      keyName ? undefined : "SharedAccessKeyName",
      key ? undefined : "SharedAccessKey",
    ].filter((name) => name !== undefined);
    throw new Error(
      `The connection string has no ${missing.join(" and no ")} (or give a SharedAccessSignature instead); expected ${EXAMPLE}.`,
    );
  }

  return {
    endpoint,
    url: first.url,
    urls: endpoints.map((each) => each.url),
    host,
    port,
    ...(entityPath ? { entityPath } : {}),
    resourceUri: entityPath ? `${namespaceUri}${entityPath}` : namespaceUri,
    ...(keyName === undefined ? {} : { keyName }),
    ...(key === undefined ? {} : { key }),
    ...(sharedAccessSignature === undefined ? {} : { sharedAccessSignature }),
    tls,
  };
}

/** One endpoint of the list: where clients connect, and whether over TLS. */
function parseEndpoint(
  endpoint: string,
  emulator: boolean,
): { url: string; host: string; port: number; tls: boolean } {
  if (endpoint === "") {
    throw new Error(
      "The connection string's Endpoint list has an empty entry; write sb://host:port/ entries separated by commas.",
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    throw new Error(
      `The connection string's Endpoint "${endpoint}" is not a URL like sb://host:port/.`,
    );
  }
  const scheme = parsed.protocol.replace(/:$/, "");
  if (!["sb", "http", "https"].includes(scheme)) {
    throw new Error(`The connection string's Endpoint must start with sb://, not ${scheme}://.`);
  }
  if (parsed.hostname === "") {
    throw new Error(`The connection string's Endpoint "${endpoint}" names no host.`);
  }
  if (parsed.pathname !== "/" && parsed.pathname !== "") {
    throw new Error(
      `The connection string's Endpoint "${endpoint}" has a path; write sb://host:port/ and name the entity in EntityPath.`,
    );
  }
  const tls = scheme === "https" || (scheme === "sb" && !emulator);
  const port = Number(parsed.port || (scheme === "sb" ? DEFAULT_GRPC_PORT : tls ? 443 : 80));
  return {
    url: `${tls ? "https" : "http"}://${parsed.hostname}:${port}`,
    host: parsed.hostname,
    port,
    tls,
  };
}

export interface FormatConnectionStringOptions {
  /** Host name or address; an IPv6 address is put in brackets. */
  host: string;
  port: number;
  keyName: string;
  key: string;
  /** false adds `UseDevelopmentEmulator=true`: clients then speak plaintext. */
  tls: boolean;
  /** Adds `EntityPath`, for a rule on that queue or topic. @default none (the namespace) */
  entityPath?: string | undefined;
}

/** Writes the connection string of a rule for a broker at `host:port`. */
export function formatConnectionString(options: FormatConnectionStringOptions): string {
  const host =
    options.host.includes(":") && !options.host.startsWith("[")
      ? `[${options.host}]`
      : options.host;
  const entity = options.entityPath ? `;EntityPath=${options.entityPath}` : "";
  const plaintext = options.tls ? "" : ";UseDevelopmentEmulator=true";
  return `Endpoint=sb://${host}:${options.port}/;SharedAccessKeyName=${options.keyName};SharedAccessKey=${options.key}${entity}${plaintext}`;
}
