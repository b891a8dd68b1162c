import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { RouteTable } from "./route-table.js";

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Largest request message read (connect-node's `readMaxBytes`). */
  maxRequestBytes: number;
  shutdownSignal: AbortSignal;
}

export interface HttpServer {
  readonly port: number;
  /** GOAWAY to every client, then waits until their running calls end (at most `graceMs`). */
  close(graceMs: number): Promise<void>;
}

/**
 * Serves every method of `routes` with the Connect protocol (binary and JSON) and gRPC-Web,
 * over HTTP/2 without TLS (h2c), with connect-node: the port for browsers and curl.
 */
export async function startHttpServer(
  routes: RouteTable,
  options: HttpServerOptions,
): Promise<HttpServer> {
  const handler = connectNodeAdapter({
    shutdownSignal: options.shutdownSignal,
    readMaxBytes: options.maxRequestBytes,
    routes(router) {
      for (const spec of routes.methods) router.rpc(spec.method, spec.impl as never);
    },
  });
  // A 100 MiB session state is one message; http2's default of 10 MB per session refuses it.
  const server = http2.createServer({ maxSessionMemory: 512 }, handler);
  const sessions = new Set<http2.Http2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          for (const session of sessions) session.destroy();
        }, graceMs);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        for (const session of sessions) session.close();
      }),
  };
}
