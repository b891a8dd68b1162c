/** The CLI commands: a thin layer over the SDK in src/client/. */
import { readFileSync } from "node:fs";
import {
  type ConnectionString,
  createSessionBusClient,
  type MessageReceiver,
  type QueueDescription,
  type ReceivedMessage,
  type SessionBusClient,
  SessionBusError,
  type SessionInfo,
} from "../client/index.js";
import {
  findCommand,
  flag,
  parseCommand,
  parseCount,
  parseDuration,
  parseSequence,
  positionals,
  str,
  UsageError,
} from "./args.js";
import { type Command, type Context, EXIT, type Io, print, toJson } from "./command.js";
import { authorizationHints, connectionStringOf } from "./credentials.js";
import { brokerErrorLines } from "./error-output.js";
import { COMMAND_HELP, commandHelp, MAIN_HELP } from "./help.js";
import { label, MESSAGE_FIELD_OPTIONS, properties } from "./message-flags.js";
import { TOKEN_COMMAND } from "./token-command.js";
import { TOPIC_COMMANDS } from "./topic-commands.js";

const processIo: Io = {
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  env: process.env,
};

/** Runs one command line; resolves with the exit code. */
export async function runCli(argv: readonly string[], io: Io = processIo): Promise<number> {
  const { command, rest } = findCommand(argv);
  let client: SessionBusClient | undefined;
  let ctx: Context | undefined;
  let connection: ConnectionString | undefined;
  try {
    if (command === undefined) {
      const parsed = parseCommand("sessionbus", rest, {});
      if (flag(parsed, "version")) {
        io.stdout(version());
        return EXIT.ok;
      }
      if (flag(parsed, "help")) {
        io.stdout(MAIN_HELP);
        return EXIT.ok;
      }
      throw new UsageError("no command given");
    }
    const spec = COMMANDS[command];
    if (!spec) throw new UsageError(`unknown command "${command}"`);
    const parsed = parseCommand(command, rest, spec.options);
    if (flag(parsed, "help")) {
      io.stdout(commandHelp(command));
      return EXIT.ok;
    }
    if (flag(parsed, "version")) {
      io.stdout(version());
      return EXIT.ok;
    }
    // Read on first use: `serve` needs no connection string, nor a valid one in the environment.
    let connectionRead = false;
    const connectionString = () => {
      if (!connectionRead) connection = connectionStringOf(parsed, io);
      connectionRead = true;
      return connection;
    };
    ctx = {
      parsed,
      io,
      json: flag(parsed, "json"),
      connection: connectionString,
      client() {
        const credentials = connectionString();
        const url =
          str(parsed, "url") ||
          io.env.SESSIONBUS_URL ||
          credentials?.urls ||
          "http://127.0.0.1:50051";
        client ??= createSessionBusClient({ url, connectionString: credentials });
        return client;
      },
    };
    return await spec.run(ctx);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`sessionbus: ${error.message}`);
      const help = error.command && error.command in COMMAND_HELP ? ` ${error.command}` : "";
      io.stderr(`Run "sessionbus${help} --help" for usage.`);
      return EXIT.usage;
    }
    if (error instanceof SessionBusError) {
      for (const line of brokerErrorLines(error, ctx?.sqlExpression)) io.stderr(line);
      for (const line of authorizationHints(error, connection, io)) io.stderr(line);
      return EXIT.brokerError;
    }
    io.stderr(`sessionbus: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT.brokerError;
  } finally {
    await client?.close();
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

function messageJson(m: ReceivedMessage) {
  return {
    sequenceNumber: m.sequenceNumber,
    messageId: m.messageId,
    sessionId: m.sessionId ?? null,
    body: m.text,
    deliveryCount: m.deliveryCount,
    enqueuedTime: m.enqueuedTime ?? null,
    state: m.state,
    subject: m.subject,
    contentType: m.contentType,
    correlationId: m.correlationId,
    applicationProperties: m.applicationProperties,
  };
}

function messageLine(m: ReceivedMessage): string {
  const session = m.sessionId === undefined ? "" : ` session=${m.sessionId}`;
  return `#${m.sequenceNumber}${session} id=${m.messageId} deliveries=${m.deliveryCount}: ${m.text}`;
}

function queueLine(q: QueueDescription): string {
  const p = q.properties;
  const r = q.runtimeInfo;
  return `${q.name}\tsessions=${p.requiresSession} lock=${p.lockDurationMs}ms maxDelivery=${p.maxDeliveryCount} active=${r.activeMessageCount} deadLetter=${r.deadLetterMessageCount}`;
}

const BATCH = 500;

const COMMANDS: Record<string, Command> = {
  serve: {
    options: {},
    async run(ctx) {
      positionals(ctx.parsed, "serve", []);
      // Loaded here only: no other command needs the broker, its log or its metrics.
      const { serveUntilStopped } = await import("../serve.js");
      return (await serveUntilStopped(ctx.io.env)) === 0 ? EXIT.ok : EXIT.brokerError;
    },
  },

  queue: {
    options: {
      "requires-session": { type: "boolean" },
      "lock-duration": { type: "string" },
      "max-delivery-count": { type: "string" },
    },
    async run(ctx) {
      const [action] = ctx.parsed.positionals;
      const p = ctx.parsed;
      switch (action) {
        case "create": {
          const [, name] = positionals(p, "queue", ["create", "NAME"]) as [string, string];
          const lock = str(p, "lock-duration");
          const maxDelivery = str(p, "max-delivery-count");
          const queue = await ctx.client().createQueue(name, {
            requiresSession: flag(p, "requires-session") || undefined,
            lockDurationMs:
              lock === undefined ? undefined : parseDuration(lock, "--lock-duration", "queue"),
            maxDeliveryCount:
              maxDelivery === undefined
                ? undefined
                : parseCount(maxDelivery, "--max-delivery-count", "queue"),
          });
          print(ctx, queue, () => `created ${queueLine(queue)}`);
          return EXIT.ok;
        }
        case "list": {
          positionals(p, "queue", ["list"]);
          const queues: QueueDescription[] = [];
          for await (const q of ctx.client().listQueues()) queues.push(q);
          print(ctx, queues, () => queues.map(queueLine).join("\n") || "(no queues)");
          return EXIT.ok;
        }
        case "get":
        case "show": {
          const [, name] = positionals(p, "queue", [action, "NAME"]) as [string, string];
          const queue = await ctx.client().getQueue(name);
          print(ctx, queue, () => JSON.stringify(queue, null, 2));
          return EXIT.ok;
        }
        case "delete": {
          const [, name] = positionals(p, "queue", ["delete", "NAME"]) as [string, string];
          await ctx.client().deleteQueue(name);
          print(ctx, { deleted: name }, () => `deleted ${name}`);
          return EXIT.ok;
        }
        default:
          throw new UsageError(
            action === undefined
              ? "queue needs an action: create, get, list or delete"
              : `unknown queue action "${action}"`,
            "queue",
          );
      }
    },
  },

  ...TOPIC_COMMANDS,

  token: TOKEN_COMMAND,

  send: {
    options: {
      body: { type: "string" },
      session: { type: "string" },
      count: { type: "string" },
      ...MESSAGE_FIELD_OPTIONS,
    },
    async run(ctx) {
      const p = ctx.parsed;
      const [queue] = positionals(p, "send", ["QUEUE"]) as [string];
      const body = str(p, "body");
      if (body === undefined) throw new UsageError("send needs --body TEXT", "send");
      const rawCount = str(p, "count");
      const count = rawCount === undefined ? 1 : parseCount(rawCount, "--count", "send");
      const message = {
        body,
        sessionId: str(p, "session"),
        messageId: str(p, "message-id"),
        correlationId: str(p, "correlation-id"),
        subject: label(p, "send"),
        applicationProperties: properties(p, "send"),
      };
      const sender = ctx.client().sender(queue);
      const sequenceNumbers: bigint[] = [];
      for (let sent = 0; sent < count; sent += BATCH) {
        const n = Math.min(BATCH, count - sent);
        const results = await sender.sendBatch(Array.from({ length: n }, () => message));
        for (const r of results) sequenceNumbers.push(r.sequenceNumber);
      }
      print(
        ctx,
        { queue, sent: count, sequenceNumbers },
        () => `sent ${count} message(s) to ${queue}: ${sequenceNumbers.join(", ")}`,
      );
      return EXIT.ok;
    },
  },

  receive: {
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
  },

  peek: {
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
  },

  sessions: {
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
      const sessions: SessionInfo[] = [];
      for await (const s of ctx.client().listSessions(queue)) sessions.push(s);
      print(
        ctx,
        { queue, sessions },
        () =>
          sessions
            .map(
              (s) =>
                `${s.sessionId}\tmessages=${s.messageCount} locked=${s.locked} stateBytes=${s.stateSizeBytes}`,
            )
            .join("\n") || "(no sessions)",
      );
      return EXIT.ok;
    },
  },

  state: {
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
        let state: Uint8Array | undefined;
        try {
          state = await session.getState();
        } finally {
          await session.close();
        }
        const text = state === undefined ? null : new TextDecoder().decode(state);
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
  },
};
