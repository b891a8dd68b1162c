import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { log } from "../observability/logger.js";
import { defaultConsoleDir, serveConsole } from "./console-assets.js";
import type { RouteTable } from "./route-table.js";
import { secureContextOptions, type TlsMaterial } from "./tls-material.js";

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Largest request message read (connect-node's `readMaxBytes`). */
  maxRequestBytes: number;
  shutdownSignal: AbortSignal;
  /** Serve TLS only, with this certificate (and mutual TLS with its client CA). */
  tls?: TlsMaterial;
  /** `GET /metrics`: the Prometheus text, to those `authorize` lets in. @default none (404) */
  metrics?: MetricsEndpoint;
  /** The built web console, served at /console/. @default dist/console of the project */
  consoleDir?: string;
}

/** What `/metrics` serves, and who may read it. */
export interface MetricsEndpoint {
  scrape(): Promise<string>;
  contentType: string;
  /** Whether a request with this `authorization` header may read the metrics. */
  authorize(authorization: string | undefined): Promise<boolean>;
}

export interface HttpServer {
  readonly port: number;
  /** With TLS: new connections get this certificate; open ones keep theirs. */
  setTls(material: TlsMaterial): void;
  /** GOAWAY to every client, then waits until their running calls end (at most `graceMs`). */
  close(graceMs: number): Promise<void>;
}

type Handler = ReturnType<typeof connectNodeAdapter>;
type Request = Parameters<Handler>[0];
type Response = Parameters<Handler>[1];

/** Answers `/metrics`: 405 but for GET and HEAD, 401 without a token that may read them. */
async function serveMetrics(
  request: Request,
  response: Response,
  metrics: MetricsEndpoint,
): Promise<void> {
  const answer = (status: number, headers: Record<string, string>, body: string) => {
    if (response.headersSent) return;
    const plain = response as http.ServerResponse;
    plain.writeHead(status, { ...headers, "content-length": Buffer.byteLength(body) });
    if (request.method === "HEAD") plain.end();
    else plain.end(body);
  };
  try {
    if (request.method !== "GET" && request.method !== "HEAD") {
      answer(405, { allow: "GET, HEAD", "content-type": "text/plain" }, "Use GET.\n");
      return;
    }
    if (!(await metrics.authorize(request.headers.authorization))) {
      answer(
        401,
        { "www-authenticate": 'Bearer realm="sessionbus metrics"', "content-type": "text/plain" },
        "/metrics needs Authorization: Bearer <SESSIONBUS_METRICS_TOKEN>, or a shared access token with Manage on the namespace.\n",
      );
      return;
    }
    answer(200, { "content-type": metrics.contentType }, await metrics.scrape());
  } catch (error) {
    log.error({ err: error }, "metrics scrape failed");
    answer(
      500,
      { "content-type": "text/plain" },
      "The metrics could not be read; see the broker's log.\n",
    );
  }
}

/** Every HTTP/2 connection without TLS starts with this preface; no HTTP/1.1 request does. */
const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Serves every method of `routes` with the Connect protocol (binary and JSON) and gRPC-Web,
 * with connect-node: the port for browsers and curl. It also serves the web console (GET
 * /console/, see console-assets.ts). Without TLS there is no ALPN to choose
 * the protocol, and Node's HTTP/2 server takes no HTTP/1.1 in cleartext, so the first bytes
 * of each connection decide: the HTTP/2 preface goes to the HTTP/2 server (h2c), anything
 * else to the HTTP/1.1 one. Both run the same handler. With TLS, ALPN chooses instead: "h2"
 * goes to the HTTP/2 server, "http/1.1" (or no ALPN) to the HTTP/1.1 one.
 */
export async function startHttpServer(
  routes: RouteTable,
  options: HttpServerOptions,
): Promise<HttpServer> {
  const rpc = connectNodeAdapter({
    shutdownSignal: options.shutdownSignal,
    readMaxBytes: options.maxRequestBytes,
    routes(router) {
      for (const spec of routes.methods) router.rpc(spec.method, spec.impl as never);
    },
  });
  const metrics = options.metrics;
  const consoleDir = options.consoleDir ?? defaultConsoleDir();
  // `/metrics`, the web console's pages and assets; everything else is an RPC.
  const handler = (request: Request, response: Response) => {
    if (
      metrics !== undefined &&
      (request.url === "/metrics" || request.url?.startsWith("/metrics?"))
    ) {
      void serveMetrics(request, response, metrics);
    } else if (!serveConsole(consoleDir, request as never, response as never)) {
      rpc(request as never, response as never);
    }
  };
  // A 100 MiB session state is one message; http2's default of 10 MB per session refuses it.
  const h2c = http2.createServer({ maxSessionMemory: 512 }, handler);
  const http1 = http.createServer(handler);
  const sessions = new Set<http2.Http2Session>();
  h2c.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  const server =
    options.tls === undefined
      ? net.createServer((socket) => {
          socket.once("data", (first: Buffer) => {
            socket.pause();
            socket.unshift(first);
            const compared = Math.min(first.length, HTTP2_PREFACE.length);
            const isHttp2 = first.subarray(0, compared).equals(HTTP2_PREFACE.subarray(0, compared));
            // Node's HTTP/2 session reads what is buffered on the socket; flowing it would lose it.
            if (isHttp2) h2c.emit("connection", socket);
            else {
              http1.emit("connection", socket);
              socket.resume();
            }
          });
          socket.on("error", () => socket.destroy());
        })
      : tls.createServer(
          {
            ...secureContextOptions(options.tls),
            ALPNProtocols: ["h2", "http/1.1"],
            // Mutual TLS: the handshake fails for a client without a certificate of the CA.
            requestCert: options.tls.clientCa !== undefined,
            rejectUnauthorized: options.tls.clientCa !== undefined,
          },
          (socket) => {
            if (socket.alpnProtocol === "h2") h2c.emit("connection", socket);
            else http1.emit("connection", socket);
            socket.on("error", () => socket.destroy());
          },
        );
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    setTls: (material) => {
      if (!(server instanceof tls.Server)) throw new Error("the HTTP port was started without TLS");
      // New handshakes use it; established connections keep the context they were made with.
      server.setSecureContext(secureContextOptions(material));
    },
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          for (const session of sessions) session.destroy();
          http1.closeAllConnections();
        }, graceMs);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        for (const session of sessions) session.close();
        http1.closeIdleConnections();
        http1.close();
        h2c.close();
      }),
  };
}
