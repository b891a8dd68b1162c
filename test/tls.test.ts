/**
 * TLS on both ports (SESSIONBUS_TLS_CERT, SESSIONBUS_TLS_KEY), mutual TLS
 * (SESSIONBUS_TLS_CLIENT_CA) and certificate rotation (reloadTls(), SIGHUP), with a CA and
 * certificates made by openssl at test time. Clients: grpc-js (test/support) on the gRPC port,
 * connect-node over HTTPS (HTTP/2 and HTTP/1.1) on the HTTP port, and tls.connect to read the
 * certificate a new connection is shown.
 */

import { X509Certificate } from "node:crypto";
import { copyFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import tls from "node:tls";
import { createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/ts/grpc/health/v1/health_pb.js";
import { MessagingService } from "../gen/ts/sessionbus/v1/messaging_service_pb.js";
import { type RunningSessionbus, startSessionbus } from "../src/app.js";
import { readConfig, type TlsFiles } from "../src/config.js";
import { startBrokerProcess } from "./support/broker-process.js";
import { SessionbusClient, uniqueName } from "./support/grpc-client.js";
import {
  type CertificateFiles,
  createTestCa,
  pem,
  type TestCa,
} from "./support/test-certificates.js";
import { rootTokenInterceptor, TEST_ROOT_KEY } from "./support/test-credentials.js";

/** grpc.health.v1.HealthCheckResponse{status: SERVING}, as bytes. */
const SERVING = Buffer.from([0x08, 0x01]);
const HEALTH_CHECK = "/grpc.health.v1.Health/Check";

let ca: TestCa;
let serverOne: CertificateFiles;
let serverTwo: CertificateFiles;
let clientCert: CertificateFiles;
/** A client certificate from a CA the broker does not trust. */
let strangerCert: CertificateFiles;

beforeAll(() => {
  ca = createTestCa("sessionbus-test-ca");
  serverOne = ca.issueServer("server-one");
  serverTwo = ca.issueServer("server-two");
  clientCert = ca.issueClient("client");
  strangerCert = createTestCa("stranger-ca", ca.dir).issueClient("stranger");
});

const brokers: RunningSessionbus[] = [];
const clients: SessionbusClient[] = [];
afterAll(async () => {
  for (const client of clients) {
    await client.deleteCreatedQueues().catch(() => {});
    client.close();
  }
  for (const broker of brokers) await broker.close();
});

async function startTlsBroker(files: TlsFiles): Promise<RunningSessionbus> {
  const broker = await startSessionbus({
    host: "127.0.0.1",
    port: 0,
    httpPort: 0,
    natsUrl: inject("natsUrl"),
    dataDir: "unused",
    natsServerBin: undefined,
    tls: files,
    auth: { enabled: true, rootKey: TEST_ROOT_KEY },
  });
  brokers.push(broker);
  return broker;
}

/** A grpc-js client of the gRPC port with these credentials; closed after the file. */
function grpcClient(url: string, credentials?: grpc.ChannelCredentials): SessionbusClient {
  const client = new SessionbusClient(url, {
    ...(credentials === undefined ? {} : { credentials }),
  });
  clients.push(client);
  return client;
}

function trustingCa(client?: CertificateFiles): grpc.ChannelCredentials {
  return client === undefined
    ? grpc.credentials.createSsl(pem(ca.cert))
    : grpc.credentials.createSsl(pem(ca.cert), pem(client.key), pem(client.cert));
}

/** The gRPC status code a call failed with (the error of a refused connection). */
async function failureCode(call: Promise<unknown>): Promise<number> {
  const error = await call.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(error, "the call should have been refused").toBeDefined();
  return (error as grpc.ServiceError).code;
}

/** The certificate a new TLS connection to `port` is shown, as its SHA-256 fingerprint. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      ca: pem(ca.cert),
      ALPNProtocols: ["h2"],
    });
    socket.once("secureConnect", () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.once("error", reject);
  });
}

const fingerprintOf = (files: CertificateFiles) =>
  new X509Certificate(pem(files.cert)).fingerprint256;

type TransportFor = (baseUrl: string, client?: CertificateFiles) => Transport;

function nodeOptions(client?: CertificateFiles) {
  return {
    ca: pem(ca.cert),
    ...(client === undefined ? {} : { cert: pem(client.cert), key: pem(client.key) }),
  };
}

const httpsTransports: [string, TransportFor][] = [
  [
    "Connect over HTTP/2",
    (baseUrl, client) =>
      createConnectTransport({
        baseUrl,
        interceptors: [rootTokenInterceptor],
        httpVersion: "2",
        nodeOptions: nodeOptions(client),
      }),
  ],
  [
    "Connect over HTTP/1.1",
    (baseUrl, client) =>
      createConnectTransport({
        baseUrl,
        interceptors: [rootTokenInterceptor],
        httpVersion: "1.1",
        nodeOptions: nodeOptions(client),
      }),
  ],
  [
    "gRPC-Web over HTTP/1.1",
    (baseUrl, client) =>
      createGrpcWebTransport({
        baseUrl,
        interceptors: [rootTokenInterceptor],
        httpVersion: "1.1",
        nodeOptions: nodeOptions(client),
      }),
  ],
];

describe("TLS (SESSIONBUS_TLS_CERT, SESSIONBUS_TLS_KEY)", () => {
  let broker: RunningSessionbus;
  beforeAll(async () => {
    broker = await startTlsBroker({ certFile: serverOne.cert, keyFile: serverOne.key });
  });

  it("gives https:// URLs for both ports", () => {
    expect(broker.url).toBe(`https://127.0.0.1:${broker.port}`);
    expect(broker.httpUrl).toBe(`https://127.0.0.1:${broker.httpPort}`);
    expect(broker.tls).toBe(true);
  });

  it("serves gRPC to a client that trusts the CA, and refuses a plaintext one", async () => {
    const client = grpcClient(broker.url, trustingCa());
    expect(await client.rawUnary(HEALTH_CHECK, Buffer.alloc(0))).toEqual(SERVING);
    const name = uniqueName("tls");
    expect((await client.createQueue(name)).name).toBe(name);

    const plaintext = grpcClient(broker.url);
    expect(await failureCode(plaintext.rawUnary(HEALTH_CHECK, Buffer.alloc(0)))).toBe(
      grpc.status.UNAVAILABLE,
    );
  });

  it("refuses a gRPC client that does not trust the broker's CA", async () => {
    const untrusting = grpcClient(broker.url, grpc.credentials.createSsl());
    expect(await failureCode(untrusting.rawUnary(HEALTH_CHECK, Buffer.alloc(0)))).toBe(
      grpc.status.UNAVAILABLE,
    );
  });

  it.each(httpsTransports)("serves %s on the HTTP port", async (_name, transportFor) => {
    const transport = transportFor(broker.httpUrl);
    const health = await createClient(Health, transport).check({});
    expect(health.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    const queue = uniqueName("tls-http");
    await grpcClient(broker.url, trustingCa()).createQueue(queue);
    const sent = await createClient(MessagingService, transport).send({
      entityPath: queue,
      messages: [{ messageId: "m", body: new TextEncoder().encode("over https") }],
    });
    expect(sent.results.map((r) => r.sequenceNumber)).toEqual([1n]);
  });

  it("refuses plaintext HTTP on the HTTP port", async () => {
    const plainUrl = broker.httpUrl.replace("https://", "http://");
    for (const httpVersion of ["2", "1.1"] as const) {
      const transport = createConnectTransport({
        baseUrl: plainUrl,
        interceptors: [rootTokenInterceptor],
        httpVersion,
      });
      await expect(createClient(Health, transport).check({})).rejects.toThrow();
    }
  });
});

describe("mutual TLS (SESSIONBUS_TLS_CLIENT_CA)", () => {
  let broker: RunningSessionbus;
  beforeAll(async () => {
    broker = await startTlsBroker({
      certFile: serverOne.cert,
      keyFile: serverOne.key,
      clientCaFile: ca.cert,
    });
  });

  it("serves a gRPC client with a certificate of the client CA", async () => {
    const client = grpcClient(broker.url, trustingCa(clientCert));
    expect(await client.rawUnary(HEALTH_CHECK, Buffer.alloc(0))).toEqual(SERVING);
    const name = uniqueName("mtls");
    expect((await client.createQueue(name)).name).toBe(name);
  });

  it("refuses a gRPC client without a client certificate, or with one of another CA", async () => {
    for (const credentials of [trustingCa(), trustingCa(strangerCert)]) {
      const client = grpcClient(broker.url, credentials);
      expect(await failureCode(client.rawUnary(HEALTH_CHECK, Buffer.alloc(0)))).toBe(
        grpc.status.UNAVAILABLE,
      );
    }
  });

  it.each(httpsTransports)(
    "serves %s with a client certificate and refuses it without one",
    async (_name, transportFor) => {
      const withCert = createClient(Health, transportFor(broker.httpUrl, clientCert));
      expect((await withCert.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      const without = createClient(Health, transportFor(broker.httpUrl));
      await expect(without.check({})).rejects.toThrow(/certificate required/);
      const stranger = createClient(Health, transportFor(broker.httpUrl, strangerCert));
      await expect(stranger.check({})).rejects.toThrow();
    },
  );
});

describe("certificate rotation", () => {
  /** The files the broker is configured with; the tests overwrite them. */
  let live: CertificateFiles;
  const install = (files: CertificateFiles) => {
    copyFileSync(files.cert, live.cert);
    copyFileSync(files.key, live.key);
  };
  beforeAll(() => {
    live = { cert: path.join(ca.dir, "live.pem"), key: path.join(ca.dir, "live.key") };
  });

  it("reloadTls() serves the new certificate to new connections; open ones keep working", async () => {
    install(serverOne);
    const broker = await startTlsBroker({ certFile: live.cert, keyFile: live.key });
    expect(await servedFingerprint(broker.port)).toBe(fingerprintOf(serverOne));
    expect(await servedFingerprint(broker.httpPort)).toBe(fingerprintOf(serverOne));
    const open = grpcClient(broker.url, trustingCa());
    expect(await open.rawUnary(HEALTH_CHECK, Buffer.alloc(0))).toEqual(SERVING);
    const openHttp = createClient(Health, httpsTransports[0][1](broker.httpUrl));
    await openHttp.check({});

    install(serverTwo);
    broker.reloadTls();
    expect(await servedFingerprint(broker.port)).toBe(fingerprintOf(serverTwo));
    expect(await servedFingerprint(broker.httpPort)).toBe(fingerprintOf(serverTwo));
    expect(await open.rawUnary(HEALTH_CHECK, Buffer.alloc(0))).toEqual(SERVING);
    expect((await openHttp.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    // New clients, on new connections, are served with the new certificate.
    const fresh = grpcClient(broker.url, trustingCa());
    expect(await fresh.rawUnary(HEALTH_CHECK, Buffer.alloc(0))).toEqual(SERVING);
  });

  it("keeps the old certificate when the new files are not a usable certificate", async () => {
    install(serverOne);
    const broker = await startTlsBroker({ certFile: live.cert, keyFile: live.key });
    // A key that is not the certificate's.
    copyFileSync(serverTwo.cert, live.cert);
    expect(() => broker.reloadTls()).toThrow(/do not make a usable certificate/);
    // Not PEM at all.
    writeFileSync(live.cert, "not a certificate");
    expect(() => broker.reloadTls()).toThrow(/live\.pem/);
    for (const port of [broker.port, broker.httpPort]) {
      expect(await servedFingerprint(port)).toBe(fingerprintOf(serverOne));
    }
    const client = grpcClient(broker.url, trustingCa());
    expect(await client.rawUnary(HEALTH_CHECK, Buffer.alloc(0))).toEqual(SERVING);
  });

  it("SIGHUP to a broker process swaps its certificate; a bad one is logged and not taken", async () => {
    const dir = ca.dir;
    const processLive = { cert: path.join(dir, "process.pem"), key: path.join(dir, "process.key") };
    copyFileSync(serverOne.cert, processLive.cert);
    copyFileSync(serverOne.key, processLive.key);
    const broker = await startBrokerProcess({
      natsUrl: inject("natsUrl"),
      env: { SESSIONBUS_TLS_CERT: processLive.cert, SESSIONBUS_TLS_KEY: processLive.key },
    });
    try {
      expect(broker.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(broker.output()).toMatch(/TLS only/);
      const port = Number(new URL(broker.url).port);
      expect(await servedFingerprint(port)).toBe(fingerprintOf(serverOne));

      copyFileSync(serverTwo.cert, processLive.cert);
      copyFileSync(serverTwo.key, processLive.key);
      const reloaded = broker.nextLine(/TLS certificate reloaded/);
      broker.kill("SIGHUP");
      await reloaded;
      expect(await servedFingerprint(port)).toBe(fingerprintOf(serverTwo));

      writeFileSync(processLive.key, "not a key");
      const refused = broker.nextLine(/TLS certificate NOT reloaded/);
      broker.kill("SIGHUP");
      expect(await refused).toMatch(/process\.key/);
      expect(await servedFingerprint(port)).toBe(fingerprintOf(serverTwo));
      const client = grpcClient(broker.url, trustingCa());
      expect(await client.rawUnary(HEALTH_CHECK, Buffer.alloc(0))).toEqual(SERVING);
    } finally {
      expect(await broker.stop()).toEqual({ code: 0, signal: null });
    }
  });
});

describe("TLS configuration", () => {
  it("refuses a certificate without its key, a key without its certificate, and a client CA alone", () => {
    expect(() => readConfig({ SESSIONBUS_TLS_CERT: "server.pem" })).toThrow(
      "SESSIONBUS_TLS_CERT is set but SESSIONBUS_TLS_KEY is not",
    );
    expect(() => readConfig({ SESSIONBUS_TLS_KEY: "server.key" })).toThrow(
      "SESSIONBUS_TLS_KEY is set but SESSIONBUS_TLS_CERT is not",
    );
    expect(() => readConfig({ SESSIONBUS_TLS_CLIENT_CA: "ca.pem" })).toThrow(
      "SESSIONBUS_TLS_CLIENT_CA needs TLS",
    );
    expect(
      readConfig({
        SESSIONBUS_TLS_CERT: "server.pem",
        SESSIONBUS_TLS_KEY: "server.key",
        SESSIONBUS_TLS_CLIENT_CA: "ca.pem",
      }).tls,
    ).toEqual({ certFile: "server.pem", keyFile: "server.key", clientCaFile: "ca.pem" });
  });

  it("does not start with a certificate file it cannot read", async () => {
    await expect(
      startTlsBroker({ certFile: path.join(ca.dir, "missing.pem"), keyFile: serverOne.key }),
    ).rejects.toThrow(/SESSIONBUS_TLS_CERT.*missing\.pem/);
  });
});
