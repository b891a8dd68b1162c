/** Settings of a sessionbus process, read from the environment in one place. */
export interface SessionbusConfig {
  /** Address to listen on. @default "127.0.0.1" (SESSIONBUS_HOST) */
  host: string;
  /** Port to listen on; 0 picks a free one. @default 50051 (SESSIONBUS_PORT) */
  port: number;
  /** NATS server to use. @default undefined: start an embedded nats-server (NATS_URL) */
  natsUrl: string | undefined;
  /** JetStream store of the embedded nats-server. @default "./data" (SESSIONBUS_DATA_DIR) */
  dataDir: string;
  /** nats-server binary for the embedded default. @default "nats-server" on PATH (NATS_SERVER_BIN) */
  natsServerBin: string | undefined;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): SessionbusConfig {
  return {
    host: env.SESSIONBUS_HOST || "127.0.0.1",
    port: parsePort(env.SESSIONBUS_PORT),
    natsUrl: env.NATS_URL || undefined,
    dataDir: env.SESSIONBUS_DATA_DIR || "./data",
    natsServerBin: env.NATS_SERVER_BIN || undefined,
  };
}

function parsePort(raw: string | undefined): number {
  if (raw === undefined || raw === "") return 50051;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`SESSIONBUS_PORT must be a port number from 0 to 65535, not "${raw}".`);
  }
  return port;
}
