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
import { PullInterruptedError } from "../src/store/pull-errors.js";
import {
  type ReadOnLeader,
  type StreamLog,
  withRemovalThroughLog,
} from "../src/store/replicated-removal.js";
import { inLeaderOrder, type NextOnLeader } from "../src/store/session-order-on-leader.js";
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

/** How MessageStreams removes messages of `stream` through its log. */
function logOf(stream: string): StreamLog {
  return { requests, stream, readOnLeader: leaderOf(stream) };
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
          logOf(stream),
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
        withRemovalThroughLog(batchOf([delivery(stream, 1, "a")]), logOf(stream)),
      );
      await expect(gone?.ack()).resolves.toBeUndefined();
      expect(await subjectsHeld(stream)).toEqual(["b"]);
    } finally {
      await jsm.streams.delete(stream);
    }
  });
});

describe("a session consumer's deliveries, checked against the session on the stream's leader", () => {
  // The leader holds session x's messages at 1, 3 and 4 and another session's at 2.
  async function sessionStream(): Promise<string> {
    return streamWith(["x.m1", "y.m2", "x.m3", "x.m4"]);
  }

  /** The message get MessageStreams makes: the leader's next message of session x. */
  function nextOfSessionX(stream: string): NextOnLeader {
    return async (from) => {
      const reply = await requests.request(
        `$JS.API.STREAM.MSG.GET.${stream}`,
        JSON.stringify({ seq: from, next_by_subj: `${stream}.x.*` }),
      );
      const found = reply.json<{ message?: { seq: number; subject: string; data: string } }>();
      return found.message
        ? {
            sequence: found.message.seq,
            subject: found.message.subject,
            data: Buffer.from(found.message.data, "base64"),
          }
        : undefined;
    };
  }

  function inOrder(
    stream: string,
    deliveries: Delivery[],
    nextOnLeader = nextOfSessionX(stream),
  ): DeliveryBatch {
    return inLeaderOrder(batchOf(deliveries), { from: 1 }, nextOnLeader, logOf(stream));
  }

  it("hands out the session's messages as the leader holds them, and drops what the leader does not hold", async () => {
    const stream = await sessionStream();
    try {
      await jsm.streams.deleteMessage(stream, 1, false); // settled; the copy has not applied it
      const handedOut = await drain(
        inOrder(stream, [
          delivery(stream, 1, "x.m1"),
          delivery(stream, 2, "x.lost-send"), // the copy holds, at 2, what the leader does not
          delivery(stream, 3, "x.m3"),
          delivery(stream, 4, "x.m4"),
        ]),
      );
      expect(handedOut.map((one) => one.streamSequence)).toEqual([3, 4]);
      expect(await subjectsHeld(stream)).toEqual(["y.m2", "x.m3", "x.m4"]);
      // Completing what was handed out removes it, and nothing of the other session.
      for (const one of handedOut) await one.ack();
      expect(await subjectsHeld(stream)).toEqual(["y.m2"]);
    } finally {
      await jsm.streams.delete(stream);
    }
  });

  it("ends the pull as interrupted when the copy skipped a message of the session the leader holds", async () => {
    const stream = await sessionStream();
    try {
      const handedOut: number[] = [];
      const reading = (async () => {
        for await (const one of inOrder(stream, [
          delivery(stream, 1, "x.m1"),
          delivery(stream, 4, "x.m4"), // 3 is missing from the copy
        ])) {
          handedOut.push(one.streamSequence);
        }
      })();
      await expect(reading).rejects.toBeInstanceOf(PullInterruptedError);
      expect(handedOut).toEqual([1]);
    } finally {
      await jsm.streams.delete(stream);
    }
  });

  it("ends the pull as interrupted when the copy holds another message of the session at the leader's number", async () => {
    const stream = await sessionStream();
    try {
      const reading = drain(inOrder(stream, [delivery(stream, 1, "x.other-bytes")]));
      await expect(reading).rejects.toBeInstanceOf(PullInterruptedError);
    } finally {
      await jsm.streams.delete(stream);
    }
  });

  it("hands out a message the leader holds by its number even when its index of the session does not show it", async () => {
    const stream = await sessionStream();
    try {
      const handedOut = await drain(
        // An index that lacks the message.
        inOrder(stream, [delivery(stream, 3, "x.m3")], async () => undefined),
      );
      expect(handedOut.map((one) => one.streamSequence)).toEqual([3]);
    } finally {
      await jsm.streams.delete(stream);
    }
  });

  it("hands out a delivery the leader could not be asked about, and its completion still removes it", async () => {
    const stream = await sessionStream();
    try {
      const handedOut = await drain(
        inOrder(stream, [delivery(stream, 1, "x.m1")], async () => {
          throw new Error("no answer from the leader");
        }),
      );
      expect(handedOut.map((one) => one.streamSequence)).toEqual([1]);
      await handedOut[0]?.ack();
      expect(await subjectsHeld(stream)).toEqual(["y.m2", "x.m3", "x.m4"]);
    } finally {
      await jsm.streams.delete(stream);
    }
  });
});
