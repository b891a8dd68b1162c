/** The commands that move and read messages: send, receive, peek, sessions and state. */
import type { MessageReceiver, ReceivedMessage, SessionInfo } from "../client/index.js";
import {
  flag,
  parseCount,
  parseDuration,
  parseSequence,
  parseTime,
  positionals,
  str,
  UsageError,
} from "./args.js";
import { type Command, EXIT, print, toJson } from "./command.js";
import { label, MESSAGE_FIELD_OPTIONS, properties } from "./message-flags.js";

/** Messages per Send call of `send --count`. */
const BATCH = 500;

function messageJson(m: ReceivedMessage) {
  return {
    sequenceNumber: m.sequenceNumber,
    messageId: m.messageId,
    sessionId: m.sessionId ?? null,
    body: m.text,
    deliveryCount: m.deliveryCount,
    enqueuedTime: m.enqueuedTime ?? null,
    scheduledEnqueueTime: m.scheduledEnqueueTime ?? null,
    expiresAt: m.expiresAt ?? null,
    state: m.state,
    subject: m.subject,
    contentType: m.contentType,
    correlationId: m.correlationId,
    applicationProperties: m.applicationProperties,
  };
}

function messageLine(m: ReceivedMessage): string {
  const session = m.sessionId === undefined ? "" : ` session=${m.sessionId}`;
  const scheduled =
    m.state === "scheduled" && m.scheduledEnqueueTime
      ? ` scheduled=${m.scheduledEnqueueTime.toISOString()}`
      : "";
  return `#${m.sequenceNumber}${session}${scheduled} id=${m.messageId} deliveries=${m.deliveryCount}: ${m.text}`;
}

const send: Command = {
  options: {
    body: { type: "string" },
    session: { type: "string" },
    count: { type: "string" },
    ttl: { type: "string" },
    schedule: { type: "string" },
    ...MESSAGE_FIELD_OPTIONS,
  },
  async run(ctx) {
    const p = ctx.parsed;
    const [queue] = positionals(p, "send", ["QUEUE"]) as [string];
    const body = str(p, "body");
    if (body === undefined) throw new UsageError("send needs --body TEXT", "send");
    const rawCount = str(p, "count");
    const count = rawCount === undefined ? 1 : parseCount(rawCount, "--count", "send");
    const rawTtl = str(p, "ttl");
    const rawSchedule = str(p, "schedule");
    const scheduledEnqueueTime =
      rawSchedule === undefined ? undefined : parseTime(rawSchedule, "--schedule", "send");
    const message = {
      body,
      sessionId: str(p, "session"),
      messageId: str(p, "message-id"),
      correlationId: str(p, "correlation-id"),
      subject: label(p, "send"),
      applicationProperties: properties(p, "send"),
      timeToLiveMs: rawTtl === undefined ? undefined : parseDuration(rawTtl, "--ttl", "send"),
      scheduledEnqueueTime,
    };
    const sender = ctx.client().sender(queue);
    const sequenceNumbers: bigint[] = [];
    for (let sent = 0; sent < count; sent += BATCH) {
      const n = Math.min(BATCH, count - sent);
      const results = await sender.sendBatch(Array.from({ length: n }, () => message));
      for (const r of results) sequenceNumbers.push(r.sequenceNumber);
    }
    const when = scheduledEnqueueTime?.toISOString();
    print(
      ctx,
      { queue, sent: count, sequenceNumbers, scheduledEnqueueTime: when ?? null },
      () =>
        `${when === undefined ? "sent" : "scheduled"} ${count} message(s) to ${queue}${when === undefined ? "" : ` for ${when}`}: ${sequenceNumbers.join(", ")}`,
    );
    return EXIT.ok;
  },
};

const receive: Command = {
  options: {
    session: { type: "string" },
    "next-session": { type: "boolean" },
    max: { type: "string" },
    wait: { type: "string" },
    "no-complete": { type: "boolean" },
  },
  async run(ctx) {
    const p = ctx.parsed;
    const [queue] = positionals(p, "receive", ["QUEUE"]) as [string];
    const sessionId = str(p, "session");
    const nextSession = flag(p, "next-session");
    if (sessionId !== undefined && nextSession) {
      throw new UsageError("use either --session or --next-session, not both", "receive");
    }
    const rawMax = str(p, "max");
    const max = rawMax === undefined ? undefined : parseCount(rawMax, "--max", "receive");
    const rawWait = str(p, "wait");
    const waitMs = rawWait === undefined ? 5000 : parseDuration(rawWait, "--wait", "receive");
    const complete = !flag(p, "no-complete");
    const prefetch = Math.min(max ?? 100, 100);
    const client = ctx.client();
    let receiver: MessageReceiver | undefined;
    let session: string | undefined;
    if (sessionId !== undefined) {
      receiver = await client.acceptSession(queue, sessionId, { prefetch });
      session = sessionId;
    } else if (nextSession) {
      const accepted = await client.acceptNextSession(queue, { prefetch, maxWaitMs: waitMs });
      receiver = accepted;
      session = accepted?.sessionId;
    } else {
      receiver = client.receiver(queue, { prefetch });
    }
    const messages: ReturnType<typeof messageJson>[] = [];
    let received = 0;
    try {
      while (receiver !== undefined && (max === undefined || received < max)) {
        const m = await receiver.receiveMessage({ maxWaitMs: waitMs });
        if (!m) break;
        if (complete) await receiver.complete(m);
        received++;
        if (ctx.json) messages.push(messageJson(m));
        else ctx.io.stdout(messageLine(m));
        if (received % 1000 === 0) ctx.io.stderr(`sessionbus: ${received} messages received`);
      }
    } finally {
      await receiver?.close();
    }
    if (ctx.json) {
      ctx.io.stdout(
        toJson({ queue, sessionId: session ?? null, received, completed: complete, messages }),
      );
    }
    if (received === 0) {
      ctx.io.stderr(`sessionbus: nothing received from ${queue} within ${waitMs} ms`);
      return EXIT.nothingReceived;
    }
    return EXIT.ok;
  },
  hints(error, ctx) {
    if (error.reason !== "SESSION_REQUIRED") return [];
    const queue = ctx.parsed.positionals[0] ?? "ENTITY";
    return [
      `sessionbus: ${queue} has sessions: receive one session with --session ID, or the next session with a message with --next-session, e.g.`,
      `    sessionbus receive ${queue} --next-session`,
      `  ("sessionbus sessions list ${queue}" lists its sessions)`,
    ];
  },
};

const peek: Command = {
  options: {
    session: { type: "string" },
    from: { type: "string" },
    max: { type: "string" },
  },
  async run(ctx) {
    const p = ctx.parsed;
    const [queue] = positionals(p, "peek", ["QUEUE"]) as [string];
    const from = str(p, "from");
    const max = str(p, "max");
    const messages = await ctx.client().peek(queue, {
      sessionId: str(p, "session"),
      fromSequenceNumber: from === undefined ? undefined : parseSequence(from, "--from", "peek"),
      maxMessages: max === undefined ? 10 : parseCount(max, "--max", "peek"),
    });
    print(
      ctx,
      { queue, messages: messages.map(messageJson) },
      () => messages.map(messageLine).join("\n") || "(no messages)",
    );
    return EXIT.ok;
  },
};

const sessions: Command = {
  options: {},
  async run(ctx) {
    const p = ctx.parsed;
    const [action] = p.positionals;
    if (action !== "list") {
      throw new UsageError(
        action === undefined ? "sessions needs an action: list" : `unknown action "${action}"`,
        "sessions",
      );
    }
    const [, queue] = positionals(p, "sessions", ["list", "QUEUE"]) as [string, string];
    const found: SessionInfo[] = [];
    for await (const s of ctx.client().listSessions(queue)) found.push(s);
    print(
      ctx,
      { queue, sessions: found },
      () =>
        found
          .map(
            (s) =>
              `${s.sessionId}\tmessages=${s.messageCount} locked=${s.locked} stateBytes=${s.stateSizeBytes}`,
          )
          .join("\n") || "(no sessions)",
    );
    return EXIT.ok;
  },
};

const state: Command = {
  options: {},
  async run(ctx) {
    const p = ctx.parsed;
    const [action] = p.positionals;
    if (action === "get") {
      const [, queue, sessionId] = positionals(p, "state", ["get", "QUEUE", "SESSION"]) as [
        string,
        string,
        string,
      ];
      const session = await ctx.client().acceptSession(queue, sessionId, { prefetch: 1 });
      let value: Uint8Array | undefined;
      try {
        value = await session.getState();
      } finally {
        await session.close();
      }
      const text = value === undefined ? null : new TextDecoder().decode(value);
      print(ctx, { queue, sessionId, state: text }, () => text ?? "(no state)");
      return EXIT.ok;
    }
    if (action === "set") {
      const [, queue, sessionId, value] = positionals(p, "state", [
        "set",
        "QUEUE",
        "SESSION",
        "VALUE",
      ]) as [string, string, string, string];
      const session = await ctx.client().acceptSession(queue, sessionId, { prefetch: 1 });
      try {
        await session.setState(value);
      } finally {
        await session.close();
      }
      print(ctx, { queue, sessionId, state: value }, () => `state of ${sessionId} set`);
      return EXIT.ok;
    }
    throw new UsageError(
      action === undefined ? "state needs an action: get or set" : `unknown action "${action}"`,
      "state",
    );
  },
};

export const MESSAGE_COMMANDS: Record<string, Command> = { send, receive, peek, sessions, state };
