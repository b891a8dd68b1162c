/**
 * With replicas, a settled message is removed by its number through the stream's log
 * (src/store/replicated-removal.ts), and a consumer hands out what its own node's copy of
 * the stream holds. nats-server 2.9.10 let a node's copy hold, at a number, another message
 * than the leader's (a leader restarted as sends were in flight): completing what that copy
 * handed out removed an acknowledged message of another session. Here a delivery carries
 * what such a copy would hand out, against a real stream on the test run's nats-server.
 */
import { AckPolicy, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Delivery, DeliveryBatch } from "../src/store/delivery.js";
import { PipelinedRequests } from "../src/store/pipelined-requests.js";
import {
  fromSequence,
  type ReadOnLeader,
  withRemovalThroughLog,
} from "../src/store/replicated-removal.js";
import { uniqueName } from "./support/grpc-client.js";

let nc: NatsConnection;
let jsm: JetStreamManager;
let requests: PipelinedRequests;

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
  jsm = await jetstreamManager(nc);
  requests = new PipelinedRequests(nc, 10_000);
});

afterAll(async () => {
  await nc?.close();
});

/** A work-queue stream holding one message per subject given, in order (numbers 1, 2, …). */
async function streamWith(subjects: string[]): Promise<string> {
  const stream = uniqueName("removal").replace(/[^A-Za-z0-9_-]/g, "_");
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], retention: "workqueue" });
  await jsm.consumers.add(stream, { durable_name: "c", ack_policy: AckPolicy.Explicit });
  const js = jsm.jetstream();
  for (const subject of subjects) await js.publish(`${stream}.${subject}`, subject);
  return stream;
}

/** The stream's leader's copy of a message, as MessageStreams reads it. */
function leaderOf(stream: string): ReadOnLeader {
  return async (sequence) => {
    const found = await jsm.streams.getMessage(stream, { seq: sequence }).catch(() => null);
    return found ? { subject: found.subject, data: found.data } : undefined;
  };
}

/** A delivery of `subject` (its body is its subject) at `streamSequence`, as a consumer's copy holds it. */
function delivery(stream: string, streamSequence: number, subject: string): Delivery {
  const unused = async () => {
    throw new Error("not settled this way here");
  };
  return {
    streamSequence,
    consumerSequence: streamSequence,
    deliveryCount: 1,
    subject: `${stream}.${subject}`,
    data: new TextEncoder().encode(subject),
    ack: unused,
    nak: unused,
    extend: unused,
  };
}

function batchOf(deliveries: Delivery[]): DeliveryBatch {
  return {
    stop: () => undefined,
    async *[Symbol.asyncIterator]() {
      yield* deliveries;
    },
  };
}

async function drain(batch: DeliveryBatch): Promise<Delivery[]> {
  const all: Delivery[] = [];
  for await (const one of batch) all.push(one);
  return all;
}

async function subjectsHeld(stream: string): Promise<string[]> {
  const held: string[] = [];
  const { first_seq, last_seq } = (await jsm.streams.info(stream)).state;
  for (let seq = first_seq; seq <= last_seq; seq++) {
    const found = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (found) held.push(found.subject.slice(stream.length + 1));
  }
  return held;
}

describe("completing a message removes it only when the leader holds that very message at its number", () => {
  it("removes a message the leader holds as delivered, and leaves the leader's message where the consumer's copy held another", async () => {
    const stream = await streamWith(["a", "b", "c"]);
    try {
      const [same, other, stranger] = await drain(
        withRemovalThroughLog(
          batchOf([
            delivery(stream, 1, "a"),
            // What a diverged copy hands out at 2: a message that is not the leader's.
            delivery(stream, 2, "lost-send"),
            // At 3, the same subject with other bytes is not the same message either.
            { ...delivery(stream, 3, "c"), data: new TextEncoder().encode("other bytes") },
          ]),
          requests,
          stream,
          leaderOf(stream),
        ),
      );
      await same?.ack();
      await other?.ack();
      await stranger?.ack();
      expect(await subjectsHeld(stream)).toEqual(["b", "c"]);
    } finally {
      await jsm.streams.delete(stream);
    }
  });

  it("counts a completion as done when the leader holds nothing at the number any more", async () => {
    const stream = await streamWith(["a", "b"]);
    try {
      await jsm.streams.deleteMessage(stream, 1, false);
      const [gone] = await drain(
        withRemovalThroughLog(
          batchOf([delivery(stream, 1, "a")]),
          requests,
          stream,
          leaderOf(stream),
        ),
      );
      await expect(gone?.ack()).resolves.toBeUndefined();
      expect(await subjectsHeld(stream)).toEqual(["b"]);
    } finally {
      await jsm.streams.delete(stream);
    }
  });
});

describe("a new session consumer's deliveries below the session's first message on the leader", () => {
  it("hands out one the leader holds as delivered, and drops one it holds otherwise or not at all, removing nothing", async () => {
    const stream = await streamWith(["a", "b", "c", "d"]);
    try {
      await jsm.streams.deleteMessage(stream, 1, false);
      const handedOut = await drain(
        fromSequence(
          batchOf([
            delivery(stream, 1, "a"), // removed on the leader, not yet on the consumer's copy
            delivery(stream, 2, "lost-send"), // another message than the leader's 2
            delivery(stream, 3, "c"), // below the floor, yet the leader holds it
            delivery(stream, 4, "d"),
          ]),
          4,
          leaderOf(stream),
        ),
      );
      expect(handedOut.map((one) => one.streamSequence)).toEqual([3, 4]);
      expect(await subjectsHeld(stream)).toEqual(["b", "c", "d"]);
    } finally {
      await jsm.streams.delete(stream);
    }
  });
});
