import { readFile } from "node:fs/promises";
import { credsAuthenticator, type NodeConnectionOptions } from "@nats-io/transport-node";

/** How the broker proves itself to its NATS server, and how it checks the server's TLS. */
export interface NatsAuth {
  /** A NATS .creds file (user JWT and nkey seed), read at connect. */
  credsFile?: string;
  user?: string;
  password?: string;
  token?: string;
  /** CA bundle (PEM) the server's certificate must chain to; setting it requires TLS. */
  tlsCaFile?: string;
  /** Client certificate (PEM) for a server that asks for one, with its key. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
}

/** The nats.js connect options for `auth`; nothing when it is empty. */
export async function natsAuthOptions(
  auth: NatsAuth | undefined,
): Promise<Partial<NodeConnectionOptions>> {
  if (auth === undefined) return {};
  const options: Partial<NodeConnectionOptions> = {};
  if (auth.credsFile !== undefined) {
    options.authenticator = credsAuthenticator(await readFile(auth.credsFile));
  }
  if (auth.user !== undefined) options.user = auth.user;
  if (auth.password !== undefined) options.pass = auth.password;
  if (auth.token !== undefined) options.token = auth.token;
  if (auth.tlsCaFile !== undefined || auth.tlsCertFile !== undefined) {
    options.tls = {
      ...(auth.tlsCaFile === undefined ? {} : { caFile: auth.tlsCaFile }),
      ...(auth.tlsCertFile === undefined ? {} : { certFile: auth.tlsCertFile }),
      ...(auth.tlsKeyFile === undefined ? {} : { keyFile: auth.tlsKeyFile }),
    };
  }
  return options;
}
