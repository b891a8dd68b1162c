import { LOG_LEVELS, type LogLevel } from "./observability/log-levels.js";
import type { NatsAuth } from "./store/nats-auth.js";
import { REPLICA_COUNTS, type ReplicaCount } from "./store/replicas.js";
import type { WriteProbeOptions } from "./store/write-probe.js";

/** Settings of a sessionbus process, read from the environment in one place. */
export interface SessionbusConfig {
  /** Address to listen on. @default "127.0.0.1" (SESSIONBUS_HOST) */
  host: string;
  /** gRPC port (grpc-js); 0 picks a free one. @default 50051 (SESSIONBUS_PORT) */
  port: number;
  /**
   * HTTP port for Connect and gRPC-Web (connect-node); 0 picks a free one.
   * @default 50052 (SESSIONBUS_HTTP_PORT); a free port when left out of a config object
   */
  httpPort?: number;
  /**
   * Largest request message accepted, in bytes; a longer one is refused with
   * RESOURCE_EXHAUSTED / REQUEST_TOO_LARGE as soon as its length is read.
   * @default DEFAULT_MAX_REQUEST_BYTES (SESSIONBUS_MAX_REQUEST_BYTES)
   */
  maxRequestBytes?: number;
  /** NATS server to use. @default undefined: start an embedded nats-server (NATS_URL) */
  natsUrl: string | undefined;
  /**
   * Credentials and TLS for NATS_URL (the embedded server gets fresh credentials at each
   * start instead): NATS_CREDS (a .creds file), NATS_USER and NATS_PASSWORD, NATS_TOKEN,
   * NATS_TLS_CA (CA bundle; requires TLS), NATS_TLS_CERT and NATS_TLS_KEY (client certificate).
   * @default none
   */
  natsAuth?: NatsAuth;
  /**
   * Copies JetStream keeps of every stream, key-value bucket and durable consumer sessionbus
   * makes: 1, 3 or 5. More than 1 needs NATS_URL to name a cluster of at least that many
   * JetStream servers; the start is refused otherwise. Entities made earlier with another
   * count are brought to this one at start.
   * @default 1 (SESSIONBUS_REPLICAS)
   */
  replicas?: ReplicaCount;
  /**
   * Timing of the store's write probe, which health follows. Not read from the environment:
   * for tests that measure an outage more finely than every 2 s.
   * @default every 2 s, 2 s to answer (WriteProbeOptions)
   */
  storeProbe?: WriteProbeOptions;
  /** JetStream store of the embedded nats-server. @default "./data" (SESSIONBUS_DATA_DIR) */
  dataDir: string;
  /** nats-server binary for the embedded default. @default "nats-server" on PATH (NATS_SERVER_BIN) */
  natsServerBin: string | undefined;
  /**
   * TLS on both ports (PEM files, re-read by `reloadTls()`, on SIGHUP). @default undefined:
   * plaintext (SESSIONBUS_TLS_CERT, SESSIONBUS_TLS_KEY, SESSIONBUS_TLS_CLIENT_CA)
   */
  tls?: TlsFiles;
  /**
   * Shared access authorization: every call but health and reflection needs a token.
   * @default on (SESSIONBUS_AUTH=off turns it off; SESSIONBUS_ROOT_KEY,
   * SESSIONBUS_ALLOW_INSECURE)
   */
  auth?: AuthSettings;
  /**
   * Level of the JSON log on stdout: fatal, error, warn, info, debug, trace or silent.
   * @default "info" (SESSIONBUS_LOG_LEVEL); a config object without it leaves the level as
   * it is (warn, unless the program set it)
   */
  logLevel?: LogLevel;
  /** `/metrics` on the HTTP port (Prometheus text format). @default see MetricsSettings */
  metrics?: MetricsSettings;
}

export interface MetricsSettings {
  /**
   * A bearer token that reads `/metrics` and nothing else (for Prometheus:
   * `authorization: { credentials_file: … }`). With authorization on and no token set,
   * `/metrics` takes only a shared access token with Manage on the namespace.
   * @default none (SESSIONBUS_METRICS_TOKEN)
   */
  token?: string;
  /**
   * How many entities (queues, topics, subscriptions, dead-letter queues) get an `entity`
   * label of their own; the figures of the others are summed under `entity="(other)"`.
   * @default 100 (SESSIONBUS_METRICS_MAX_ENTITIES)
   */
  maxEntities?: number;
}

/** @default of MetricsSettings.maxEntities */
export const DEFAULT_METRICS_MAX_ENTITIES = 100;

/** The shortest SESSIONBUS_METRICS_TOKEN taken: a scraper's secret must not be guessable. */
const MIN_METRICS_TOKEN_LENGTH = 16;

export interface AuthSettings {
  /** Tokens required. Off is allowed on a loopback address only, unless allowInsecure. */
  enabled: boolean;
  /** The RootManageSharedAccessKey rule's primary key, set at start (else generated once). */
  rootKey?: string;
  /** Auth off on a non-loopback address: anyone who reaches the port may do anything. */
  allowInsecure?: boolean;
}

/** Where the broker's certificate, its key and (for mutual TLS) the client CA are. */
export interface TlsFiles {
  /** PEM certificate chain, the server's certificate first. */
  certFile: string;
  /** PEM private key of that certificate. */
  keyFile: string;
  /** PEM CA certificates; when set, every client must present a certificate signed by one. */
  clientCaFile?: string;
}

/**
 * The largest request semantics §8 allows is a SetSessionState with a 100 MiB state; the
 * 64 KiB on top leave room for its entity path, session id and lock token.
 */
export const DEFAULT_MAX_REQUEST_BYTES = 100 * 1024 * 1024 + 64 * 1024;

export function readConfig(env: NodeJS.ProcessEnv = process.env): SessionbusConfig {
  return {
    host: env.SESSIONBUS_HOST || "127.0.0.1",
    port: parsePort("SESSIONBUS_PORT", env.SESSIONBUS_PORT, 50051),
    httpPort: parsePort("SESSIONBUS_HTTP_PORT", env.SESSIONBUS_HTTP_PORT, 50052),
    maxRequestBytes: parseBytes(
      "SESSIONBUS_MAX_REQUEST_BYTES",
      env.SESSIONBUS_MAX_REQUEST_BYTES,
      DEFAULT_MAX_REQUEST_BYTES,
    ),
    natsUrl: env.NATS_URL || undefined,
    natsAuth: readNatsAuth(env),
    replicas: parseReplicas(env.SESSIONBUS_REPLICAS),
    dataDir: env.SESSIONBUS_DATA_DIR || "./data",
    natsServerBin: env.NATS_SERVER_BIN || undefined,
    ...readTlsFiles(env),
    auth: readAuth(env),
    logLevel: readLogLevel(env),
    metrics: readMetrics(env),
  };
}

function readLogLevel(env: NodeJS.ProcessEnv): LogLevel {
  const level = (env.SESSIONBUS_LOG_LEVEL || "info").toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new Error(
      `SESSIONBUS_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, not "${env.SESSIONBUS_LOG_LEVEL}".`,
    );
  }
  return level as LogLevel;
}

function readMetrics(env: NodeJS.ProcessEnv): MetricsSettings {
  const token = env.SESSIONBUS_METRICS_TOKEN || undefined;
  if (token !== undefined && (token.length < MIN_METRICS_TOKEN_LENGTH || /\s/.test(token))) {
    throw new Error(
      `SESSIONBUS_METRICS_TOKEN must be at least ${MIN_METRICS_TOKEN_LENGTH} characters without spaces (e.g. openssl rand -base64 32).`,
    );
  }
  const raw = env.SESSIONBUS_METRICS_MAX_ENTITIES;
  let maxEntities = DEFAULT_METRICS_MAX_ENTITIES;
  if (raw !== undefined && raw !== "") {
    maxEntities = Number(raw);
    if (!Number.isInteger(maxEntities) || maxEntities < 0 || maxEntities > 10_000) {
      throw new Error(
        `SESSIONBUS_METRICS_MAX_ENTITIES must be a whole number from 0 to 10000, not "${raw}".`,
      );
    }
  }
  return { ...(token === undefined ? {} : { token }), maxEntities };
}

function readAuth(env: NodeJS.ProcessEnv): AuthSettings {
  const mode = (env.SESSIONBUS_AUTH || "on").toLowerCase();
  if (mode !== "on" && mode !== "off") {
    throw new Error(`SESSIONBUS_AUTH must be "on" or "off", not "${env.SESSIONBUS_AUTH}".`);
  }
  const insecure = (env.SESSIONBUS_ALLOW_INSECURE || "false").toLowerCase();
  if (insecure !== "true" && insecure !== "false") {
    throw new Error(
      `SESSIONBUS_ALLOW_INSECURE must be "true" or "false", not "${env.SESSIONBUS_ALLOW_INSECURE}".`,
    );
  }
  return {
    enabled: mode === "on",
    ...(env.SESSIONBUS_ROOT_KEY ? { rootKey: env.SESSIONBUS_ROOT_KEY } : {}),
    allowInsecure: insecure === "true",
  };
}

function readNatsAuth(env: NodeJS.ProcessEnv): NatsAuth {
  const auth: NatsAuth = {};
  const fields: [keyof NatsAuth, string][] = [
    ["credsFile", "NATS_CREDS"],
    ["user", "NATS_USER"],
    ["password", "NATS_PASSWORD"],
    ["token", "NATS_TOKEN"],
    ["tlsCaFile", "NATS_TLS_CA"],
    ["tlsCertFile", "NATS_TLS_CERT"],
    ["tlsKeyFile", "NATS_TLS_KEY"],
  ];
  for (const [field, name] of fields) {
    const value = env[name];
    if (value !== undefined && value !== "") auth[field] = value;
  }
  if ((auth.tlsCertFile === undefined) !== (auth.tlsKeyFile === undefined)) {
    throw new Error("NATS_TLS_CERT and NATS_TLS_KEY must be set together.");
  }
  return auth;
}

function readTlsFiles(env: NodeJS.ProcessEnv): { tls?: TlsFiles } {
  const certFile = env.SESSIONBUS_TLS_CERT || undefined;
  const keyFile = env.SESSIONBUS_TLS_KEY || undefined;
  const clientCaFile = env.SESSIONBUS_TLS_CLIENT_CA || undefined;
  if (certFile === undefined && keyFile === undefined) {
    if (clientCaFile !== undefined) {
      throw new Error(
        "SESSIONBUS_TLS_CLIENT_CA needs TLS: set SESSIONBUS_TLS_CERT and SESSIONBUS_TLS_KEY too.",
      );
    }
    return {};
  }
  if (certFile === undefined || keyFile === undefined) {
    const [set, unset] =
      certFile === undefined
        ? ["SESSIONBUS_TLS_KEY", "SESSIONBUS_TLS_CERT"]
        : ["SESSIONBUS_TLS_CERT", "SESSIONBUS_TLS_KEY"];
    throw new Error(`${set} is set but ${unset} is not: TLS needs both (PEM file paths).`);
  }
  return { tls: { certFile, keyFile, ...(clientCaFile === undefined ? {} : { clientCaFile }) } };
}

function parseReplicas(raw: string | undefined): ReplicaCount {
  if (raw === undefined || raw === "") return 1;
  const count = REPLICA_COUNTS.find((allowed) => String(allowed) === raw.trim());
  if (count === undefined) {
    throw new Error(
      `SESSIONBUS_REPLICAS must be 1, 3 or 5 (copies of every stream in a NATS cluster), not "${raw}".`,
    );
  }
  return count;
}

function parsePort(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === "") return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${name} must be a port number from 0 to 65535, not "${raw}".`);
  }
  return port;
}

function parseBytes(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === "") return fallback;
  const bytes = Number(raw);
  // grpc-js keeps the limit in a 32-bit integer.
  if (!Number.isInteger(bytes) || bytes < 1024 || bytes > 2 ** 31 - 1) {
    throw new Error(
      `${name} must be a whole number of bytes from 1024 to ${2 ** 31 - 1}, not "${raw}".`,
    );
  }
  return bytes;
}
