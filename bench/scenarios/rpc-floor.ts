/**
 * Scenario 7 — the RPC floor: what one unary call costs the broker in CPU, against a bare
 * @grpc/grpc-js server (bench/support/bare-grpc-server.ts, a process of its own) answering
 * the same `grpc.health.v1.Health/Check`. A grpc-js client keeps 32 calls in flight on one
 * connection to each server and makes `rpcCalls` calls of each kind: Health/Check to the
 * bare server, Health/Check to the broker, and AdminService/GetQueue of an existing queue
 * to the broker (a cheap call that goes through the broker's code). CPU time is
 * utime + stime of each server process from /proc/<pid>/stat, read before and after.
 *
 * The calls are made in rounds that alternate between the three, so other load on the
 * machine weighs on all of them alike; each server first gets unmeasured calls to warm up.
 * The client sends prepared request bytes and does not decode the answers, so that its
 * own CPU, which shares the machine, stays small.
 *
 * The broker under test runs as users run it, with authorization on: every GetQueue carries
 * a token. A second broker on the same nats-server runs with SESSIONBUS_AUTH=off and gets
 * the same GetQueue calls, so the difference is what checking tokens costs per call.
 */
import { performance } from "node:perf_hooks";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Client, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/ts/grpc/health/v1/health_pb.js";
import {
  GetQueueRequestSchema,
  GetQueueResponseSchema,
} from "../../gen/ts/sessionbus/v1/admin_service_pb.js";
import {
  CALL_TIMEOUT_MS,
  createBenchClient,
  createSessionQueue,
  deleteQueue,
  runPool,
} from "../support/client.js";
import { benchToken } from "../support/credentials.js";
import { cpuSeconds, startBareGrpcServer, startBenchBroker } from "../support/processes.js";
import { Figures, type Scenario } from "../support/scenario.js";
import { rate, round } from "../support/stats.js";

const IN_FLIGHT = 32;
/** Unmeasured calls per kind before the first round (fewer when `rpcCalls` is smaller). */
const WARM_UP_CALLS = 2_000;
/** The measured calls of each kind are spread over this many alternating rounds. */
const ROUNDS = 4;
const HEALTH_CHECK = "/grpc.health.v1.Health/Check";
const GET_QUEUE = "/sessionbus.v1.AdminService/GetQueue";

export const rpcFloor: Scenario = {
  id: "rpcFloor",
  title: "7. RPC floor (server CPU per unary call: broker against a bare grpc-js server)",
  // On a broker of its own: nothing left over from other scenarios runs beside the calls.
  freshBroker: true,
  timeoutMs: (sizes) => 60_000 + sizes.rpcCalls * 4,
  run: async (context) => {
    const { sizes, signal } = context;
    const bare = await startBareGrpcServer();
    const authOff = await startBenchBroker({
      natsUrl: context.natsUrl,
      env: { SESSIONBUS_AUTH: "off" },
    });
    const authOffClient = new Client(new URL(authOff.url).host, insecure());
    const admin = createBenchClient(context.brokerUrl);
    const brokerClient = new Client(new URL(context.brokerUrl).host, insecure());
    const bareClient = new Client(bare.address, insecure());
    let queue: string | undefined;
    try {
      queue = await createSessionQueue(admin, "rpc-floor", context.problem);
      const healthRequest = bytes(
        toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema)),
      );
      const serving = bytes(
        toBinary(
          HealthCheckResponseSchema,
          create(HealthCheckResponseSchema, { status: ServingStatus.SERVING }),
        ),
      );
      const isServing = (response: Buffer) => response.equals(serving);
      const getQueueRequest = bytes(
        toBinary(GetQueueRequestSchema, create(GetQueueRequestSchema, { name: queue })),
      );
      const kinds: Kind[] = [
        {
          what: "bare grpc-js Health/Check",
          client: bareClient,
          pid: bare.pid,
          path: HEALTH_CHECK,
          request: healthRequest,
          answered: isServing,
        },
        {
          what: "broker Health/Check",
          client: brokerClient,
          pid: context.brokerPid,
          path: HEALTH_CHECK,
          request: healthRequest,
          answered: isServing,
        },
        {
          what: "broker GetQueue",
          client: brokerClient,
          pid: context.brokerPid,
          path: GET_QUEUE,
          request: getQueueRequest,
          // Only the length is checked per call; one answer is decoded below.
          answered: (response) => response.length > 0,
        },
        {
          what: "broker GetQueue, auth off",
          client: authOffClient,
          pid: authOff.pid,
          path: GET_QUEUE,
          request: getQueueRequest,
          answered: (response) => response.length > 0,
        },
      ];
      const firstQueue = await unary(brokerClient, GET_QUEUE, getQueueRequest);
      if (fromBinary(GetQueueResponseSchema, firstQueue).queue?.name !== queue) {
        context.problem(`GetQueue did not describe the queue "${queue}"`);
      }

      const warmUp = Math.min(WARM_UP_CALLS, sizes.rpcCalls);
      for (const kind of kinds) await drive(context.natsPid, kind, warmUp, signal, context.problem);
      context.log(`warmed up with ${warmUp} calls of each kind`);
      const totals = kinds.map(() => ({ calls: 0, cpuSeconds: 0, natsCpuSeconds: 0, wallMs: 0 }));
      for (let round = 0; round < ROUNDS && !signal.aborted; round++) {
        const count =
          Math.floor(sizes.rpcCalls / ROUNDS) + (round < sizes.rpcCalls % ROUNDS ? 1 : 0);
        for (const [i, kind] of kinds.entries()) {
          const used = await drive(context.natsPid, kind, count, signal, context.problem);
          const total = totals[i] as (typeof totals)[number];
          total.calls += used.calls;
          total.cpuSeconds += used.cpuSeconds;
          total.natsCpuSeconds += used.natsCpuSeconds;
          total.wallMs += used.wallMs;
        }
      }
      const perCallUs = (seconds: number, calls: number) =>
        calls > 0 ? round((seconds * 1e6) / calls, 1) : Number.NaN;
      const [bareHealth, brokerHealth, brokerGetQueue, authOffGetQueue] = totals.map((total) => ({
        cpuUs: perCallUs(total.cpuSeconds, total.calls),
        natsCpuUs: perCallUs(total.natsCpuSeconds, total.calls),
        perSecond: rate(total.calls, total.wallMs),
        calls: total.calls,
      })) as [Measured, Measured, Measured, Measured];
      context.log(
        `CPU per call: bare ${bareHealth.cpuUs} µs, broker Health/Check ${brokerHealth.cpuUs} µs, GetQueue ${brokerGetQueue.cpuUs} µs`,
      );
      return new Figures()
        .add("calls", Math.min(...totals.map((t) => t.calls)), "calls", "measured calls per kind")
        .add("inFlight", IN_FLIGHT, "calls", "calls in flight (one grpc-js connection)")
        .add("bareHealthCpuUs", bareHealth.cpuUs, "µs", "bare grpc-js: CPU per Health/Check")
        .add("brokerHealthCpuUs", brokerHealth.cpuUs, "µs", "broker: CPU per Health/Check")
        .add("brokerGetQueueCpuUs", brokerGetQueue.cpuUs, "µs", "broker: CPU per GetQueue")
        .add(
          "healthRatio",
          round(brokerHealth.cpuUs / bareHealth.cpuUs, 2),
          "×",
          "broker ÷ bare, Health/Check",
        )
        .add(
          "getQueueRatio",
          round(brokerGetQueue.cpuUs / bareHealth.cpuUs, 2),
          "×",
          "broker GetQueue ÷ bare Health/Check",
        )
        .add(
          "getQueueNatsCpuUs",
          brokerGetQueue.natsCpuUs,
          "µs",
          "nats-server: CPU per GetQueue (behind the broker)",
        )
        .add(
          "authOffGetQueueCpuUs",
          authOffGetQueue.cpuUs,
          "µs",
          "broker with SESSIONBUS_AUTH=off: CPU per GetQueue",
        )
        .add(
          "authCostPct",
          round((100 * (brokerGetQueue.cpuUs - authOffGetQueue.cpuUs)) / brokerGetQueue.cpuUs, 1),
          "%",
          "token checks: share of the broker's CPU per GetQueue",
        )
        .add("bareHealthPerSec", bareHealth.perSecond, "calls/s", "bare grpc-js: Health/Check")
        .add("brokerHealthPerSec", brokerHealth.perSecond, "calls/s", "broker: Health/Check")
        .add("brokerGetQueuePerSec", brokerGetQueue.perSecond, "calls/s", "broker: GetQueue");
    } finally {
      brokerClient.close();
      bareClient.close();
      authOffClient.close();
      await authOff.stop();
      if (queue !== undefined) await deleteQueue(admin, queue, context.problem);
      admin.close();
      await bare.stop();
    }
  },
};

interface Kind {
  what: string;
  client: Client;
  /** The server process whose CPU the calls are charged to. */
  pid: number;
  path: string;
  request: Buffer;
  /** Whether a response is the expected one. */
  answered(response: Buffer): boolean;
}

interface Measured {
  cpuUs: number;
  natsCpuUs: number;
  perSecond: number;
  calls: number;
}

interface Used {
  calls: number;
  cpuSeconds: number;
  /** nats-server's CPU time meanwhile: what the call costs behind the broker. */
  natsCpuSeconds: number;
  wallMs: number;
}

/** Makes `count` calls of `kind`, `IN_FLIGHT` at once; the servers' CPU time meanwhile. */
async function drive(
  natsPid: number,
  kind: Kind,
  count: number,
  signal: AbortSignal,
  problem: (line: string) => void,
): Promise<Used> {
  let calls = 0;
  const cpuBefore = await cpuSeconds(kind.pid);
  const natsBefore = await cpuSeconds(natsPid);
  const started = performance.now();
  await runPool(count, IN_FLIGHT, signal, async () => {
    try {
      const response = await unary(kind.client, kind.path, kind.request);
      if (kind.answered(response)) calls++;
      else problem(`${kind.what}: unexpected answer of ${response.length} bytes`);
    } catch (error) {
      const failure = error as Partial<ServiceError>;
      problem(`${kind.what}: ${status[failure.code ?? status.UNKNOWN]} ${failure.details ?? ""}`);
    }
  });
  const wallMs = performance.now() - started;
  const cpuAfter = await cpuSeconds(kind.pid);
  const natsAfter = await cpuSeconds(natsPid);
  return {
    calls,
    cpuSeconds: cpuAfter - cpuBefore,
    natsCpuSeconds: natsAfter - natsBefore,
    wallMs,
  };
}

/** One unary call with raw bytes both ways: the client does no protobuf work per call. */
function unary(client: Client, path: string, request: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      identity,
      identity,
      request,
      tokenMetadata(),
      { deadline: Date.now() + CALL_TIMEOUT_MS },
      (error, response) => (error || response === undefined ? reject(error) : resolve(response)),
    );
  });
}

const identity = (value: Buffer) => value;

/** The broker requires a token (the bare server ignores it): one Metadata per call, as clients send. */
function tokenMetadata(): Metadata {
  const metadata = new Metadata();
  metadata.set("authorization", benchToken());
  return metadata;
}
const bytes = (array: Uint8Array) => Buffer.from(array);
const insecure = () => credentials.createInsecure();
