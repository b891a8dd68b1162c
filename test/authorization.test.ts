/**
 * Shared access authorization as a user meets it: rules on a queue or topic reach that
 * entity only, tokens cover the path they name and what is below it, keys rotate without
 * downtime, changes to a rule apply at once, a caller without rights learns nothing about
 * an entity, and the HTTP port checks the same tokens.
 */
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { brokerPerFile } from "./support/broker-per-file.js";
import { startTestBroker, type TestBroker } from "./support/grpc-broker.js";
import { failure, SessionbusClient } from "./support/grpc-client.js";
import { mintToken } from "./support/test-credentials.js";

let running: TestBroker;
// Queues made in a describe's beforeAll serve all its tests: they go when the broker closes.
brokerPerFile(
  startTestBroker,
  (started) => {
    running = started;
  },
  { cleanUpAfterEachTest: false },
);

interface RuleKeys {
  name: string;
  primaryKey: string;
  secondaryKey: string;
  rights: string[];
}

const unique = (what: string) => `auth-${what}-${randomUUID().slice(0, 8)}`;
const opened: SessionbusClient[] = [];

/** A client of the test broker sending `token` (null: none). */
function clientWith(token: string | null): SessionbusClient {
  const client = new SessionbusClient(running.broker.url, { token });
  opened.push(client);
  return client;
}

afterAll(() => {
  for (const client of opened) client.close();
});

async function createRule(entityPath: string, name: string, rights: string[]): Promise<RuleKeys> {
  const { rule } = await running.client.unary<{ rule: RuleKeys }>(
    "AdminService",
    "CreateAuthorizationRule",
    { entityPath, name, rights },
  );
  return rule;
}

const peek = (client: SessionbusClient, entityPath: string) =>
  client.unary("MessagingService", "Peek", { entityPath, maxMessages: 1 });
const send = (client: SessionbusClient, entityPath: string) =>
  client.unary("MessagingService", "Send", { entityPath, messages: [{ body: Buffer.from("x") }] });

describe("a rule on a queue", () => {
  let queue: string;
  let rule: RuleKeys;
  beforeAll(async () => {
    queue = unique("queue");
    await running.client.createQueue(queue);
    await running.client.createQueue(`${queue}/inner`);
    await running.client.createQueue(`${queue}-sibling`);
    rule = await createRule(queue, "listener", ["ACCESS_RIGHT_LISTEN"]);
  });

  it("lets its tokens listen on the queue and its dead-letter queue", async () => {
    const client = clientWith(
      mintToken({ keyName: rule.name, key: rule.primaryKey, entityPath: queue }),
    );
    await expect(peek(client, queue)).resolves.toBeDefined();
    await expect(peek(client, `${queue}/$deadletterqueue`)).resolves.toBeDefined();
    // Entity paths match case-insensitively, in tokens too.
    await expect(peek(client, queue.toUpperCase())).resolves.toBeDefined();
  });

  it("gives its tokens nothing beyond its rights, or on any other entity", async () => {
    const client = clientWith(
      mintToken({ keyName: rule.name, key: rule.primaryKey, entityPath: queue }),
    );
    const noSend = await failure(send(client, queue));
    expect([noSend.codeName, noSend.reason, noSend.missingRight]).toEqual([
      "PERMISSION_DENIED",
      "MISSING_RIGHT",
      "Send",
    ]);
    // A queue named below it is another entity: the rule does not reach it.
    for (const other of [`${queue}/inner`, `${queue}-sibling`]) {
      expect((await failure(peek(client, other))).reason).toBe("MISSING_RIGHT");
    }
    // Its token for another entity path is not signed by any rule of that entity.
    const elsewhere = clientWith(
      mintToken({ keyName: rule.name, key: rule.primaryKey, entityPath: `${queue}-sibling` }),
    );
    expect((await failure(peek(elsewhere, `${queue}-sibling`))).reason).toBe("TOKEN_INVALID");
  });

  it("goes away with its queue: a queue made again under the name has none", async () => {
    const name = unique("recreated");
    await running.client.createQueue(name);
    const own = await createRule(name, "sender", ["ACCESS_RIGHT_SEND"]);
    const client = clientWith(
      mintToken({ keyName: own.name, key: own.primaryKey, entityPath: name }),
    );
    await expect(send(client, name)).resolves.toBeDefined();
    await running.client.deleteQueue(name);
    await running.client.createQueue(name);
    expect((await failure(send(client, name))).reason).toBe("TOKEN_INVALID");
  });
});

describe("a rule on a topic", () => {
  it("reaches the topic's subscriptions", async () => {
    const topic = unique("topic");
    await running.client.unary("AdminService", "CreateTopic", { name: topic });
    try {
      await running.client.unary("AdminService", "CreateSubscription", {
        topicName: topic,
        name: "audit",
      });
      const rule = await createRule(topic, "all", ["ACCESS_RIGHT_SEND", "ACCESS_RIGHT_LISTEN"]);
      const client = clientWith(
        mintToken({ keyName: rule.name, key: rule.primaryKey, entityPath: topic }),
      );
      await expect(send(client, topic)).resolves.toBeDefined();
      await expect(peek(client, `${topic}/subscriptions/audit`)).resolves.toBeDefined();
      await expect(
        peek(client, `${topic}/subscriptions/audit/$deadletterqueue`),
      ).resolves.toBeDefined();
      // Listen does not include Manage.
      const manage = await failure(
        client.unary("AdminService", "GetSubscription", { topicName: topic, name: "audit" }),
      );
      expect([manage.reason, manage.missingRight]).toEqual(["MISSING_RIGHT", "Manage"]);
    } finally {
      await running.client.unary("AdminService", "DeleteTopic", { name: topic });
    }
  });
});

describe("namespace rules", () => {
  let rule: RuleKeys;
  beforeAll(async () => {
    rule = await createRule("", unique("ns"), ["ACCESS_RIGHT_SEND"]);
  });
  afterAll(async () => {
    await running.client.unary("AdminService", "DeleteAuthorizationRule", {
      entityPath: "",
      name: rule.name,
    });
  });

  it("sign tokens that cover only the path they name and what is below it", async () => {
    const queue = unique("scoped");
    await running.client.createQueue(queue);
    await running.client.createQueue(`${queue}/eu`);
    await running.client.createQueue(`${queue}x`);
    const client = clientWith(
      mintToken({ keyName: rule.name, key: rule.primaryKey, entityPath: queue }),
    );
    await expect(send(client, queue)).resolves.toBeDefined();
    await expect(send(client, `${queue}/eu`)).resolves.toBeDefined();
    expect((await failure(send(client, `${queue}x`))).reason).toBe("MISSING_RIGHT");
  });

  it("rotate keys without downtime: either key signs, a regenerated one stops at once", async () => {
    const queue = unique("rotate");
    await running.client.createQueue(queue);
    const primary = clientWith(mintToken({ keyName: rule.name, key: rule.primaryKey }));
    const secondary = clientWith(mintToken({ keyName: rule.name, key: rule.secondaryKey }));
    await expect(send(primary, queue)).resolves.toBeDefined();
    await expect(send(secondary, queue)).resolves.toBeDefined();
    const { rule: rotated } = await running.client.unary<{ rule: RuleKeys }>(
      "AdminService",
      "RegenerateAuthorizationRuleKey",
      { entityPath: "", name: rule.name, key: "RULE_KEY_PRIMARY" },
    );
    expect(rotated.primaryKey).not.toBe(rule.primaryKey);
    expect(rotated.secondaryKey).toBe(rule.secondaryKey);
    expect((await failure(send(primary, queue))).reason).toBe("TOKEN_INVALID");
    await expect(send(secondary, queue)).resolves.toBeDefined();
    const renewed = clientWith(mintToken({ keyName: rule.name, key: rotated.primaryKey }));
    await expect(send(renewed, queue)).resolves.toBeDefined();
    rule = rotated;
  });

  it("apply a change of rights to the next call of a token already in use", async () => {
    const queue = unique("rights");
    await running.client.createQueue(queue);
    const changing = await createRule("", unique("changing"), ["ACCESS_RIGHT_SEND"]);
    try {
      const client = clientWith(mintToken({ keyName: changing.name, key: changing.primaryKey }));
      await expect(send(client, queue)).resolves.toBeDefined();
      await running.client.unary("AdminService", "UpdateAuthorizationRule", {
        entityPath: "",
        name: changing.name,
        rights: ["ACCESS_RIGHT_LISTEN"],
      });
      const refused = await failure(send(client, queue));
      expect([refused.reason, refused.missingRight]).toEqual(["MISSING_RIGHT", "Send"]);
      await expect(peek(client, queue)).resolves.toBeDefined();
    } finally {
      await running.client.unary("AdminService", "DeleteAuthorizationRule", {
        entityPath: "",
        name: changing.name,
      });
    }
  });
});

describe("a caller without rights on an entity", () => {
  it("gets the same answer whether the entity exists or not", async () => {
    const existing = unique("exists");
    const missing = unique("missing");
    await running.client.createQueue(existing);
    const rule = await createRule(existing, "listen", ["ACCESS_RIGHT_LISTEN"]);
    const outsider = clientWith(
      mintToken({ keyName: rule.name, key: rule.primaryKey, entityPath: existing }),
    );
    const answers = [];
    for (const name of [`${existing}-b`, missing]) {
      await (name === missing ? Promise.resolve() : running.client.createQueue(name));
      const error = await failure(outsider.unary("AdminService", "GetQueue", { name }));
      answers.push({ ...error, message: error.message.replace(name, "<name>"), entityPath: "" });
    }
    expect(answers[0]).toEqual(answers[1]);
    expect(answers[0]?.reason).toBe("MISSING_RIGHT");
  });
});

describe("tokens", () => {
  it("are refused clearly when malformed, with TOKEN_INVALID and never an internal error", async () => {
    const queue = unique("malformed");
    await running.client.createQueue(queue);
    const good = mintToken();
    const malformed = [
      "Bearer abc",
      "SharedAccessSignature",
      "SharedAccessSignature sr=&sig=&se=&skn=",
      good.replace(/se=\d+/, "se=soon"),
      good.replace(/se=\d+/, "se=99999999999999999999"),
      good.replace(/sig=[^&]+/, "sig=%E0%A4%A"),
      good.replace(/sig=[^&]+/, "sig=AAAA"),
      good.replace(/skn=[^&]+/, "skn=NoSuchRule"),
      `${good}&sr=sb%3A%2F%2Fother%2F`,
      `SharedAccessSignature ${"x".repeat(10_000)}`,
    ];
    for (const token of malformed) {
      const error = await failure(send(clientWith(token), queue));
      expect([error.codeName, error.reason], token.slice(0, 80)).toEqual([
        "UNAUTHENTICATED",
        "TOKEN_INVALID",
      ]);
    }
  });

  it("are checked on the HTTP port too (Connect JSON)", async () => {
    const url = `${running.broker.httpUrl}/sessionbus.v1.AdminService/ListQueues`;
    const call = (headers: Record<string, string>) =>
      fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: "{}",
      });
    const without = await call({});
    expect(without.status).toBe(401);
    expect(((await without.json()) as { code: string }).code).toBe("unauthenticated");
    const withToken = await call({ authorization: mintToken() });
    expect(withToken.status).toBe(200);
  });

  it("are checked per frame on a SendStream: a frame for an entity not covered fails alone", async () => {
    const allowed = unique("frames");
    const forbidden = unique("frames-forbidden");
    await running.client.createQueue(allowed);
    await running.client.createQueue(forbidden);
    const rule = await createRule(allowed, "send", ["ACCESS_RIGHT_SEND"]);
    const client = clientWith(
      mintToken({ keyName: rule.name, key: rule.primaryKey, entityPath: allowed }),
    );
    const stream = client.openDuplex<
      object,
      { results: unknown[]; error: { code: number; detail: { reason: string } } | null }
    >("MessagingService", "SendStream");
    const answers: {
      results: unknown[];
      error: { code: number; detail: { reason: string } } | null;
    }[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (answer) => {
        answers.push(answer);
        if (answers.length === 3) resolve();
      });
      stream.on("error", reject);
    });
    for (const entityPath of [allowed, forbidden, allowed]) {
      stream.write({ entityPath, messages: [{ body: Buffer.from(entityPath) }] });
    }
    await done;
    stream.end();
    expect(answers.map((a) => a.error?.code ?? 0)).toEqual([0, grpc.status.PERMISSION_DENIED, 0]);
    expect(answers[1]?.error?.detail.reason).toBe("MISSING_RIGHT");
    const counts = await Promise.all(
      [allowed, forbidden].map(async (name) => (await running.client.getQueue(name)).runtimeInfo),
    );
    expect(counts.map((runtime) => Number(runtime?.activeMessageCount))).toEqual([2, 0]);
  });
});

describe("authorization rule administration", () => {
  it("refuses bad names, rights and keys with INVALID_ARGUMENT naming the field", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ entityPath: "", name: "", rights: ["ACCESS_RIGHT_SEND"] }, "name"],
      [{ entityPath: "", name: "bad name", rights: ["ACCESS_RIGHT_SEND"] }, "name"],
      [{ entityPath: "", name: unique("norights"), rights: [] }, "rights"],
      [{ entityPath: "", name: unique("unspecified"), rights: [0] }, "rights[0]"],
      [{ entityPath: "", name: unique("short"), rights: [2], primaryKey: "short" }, "primary_key"],
    ];
    for (const [request, field] of cases) {
      const error = await failure(
        running.client.unary("AdminService", "CreateAuthorizationRule", request),
      );
      expect([error.codeName, error.field]).toEqual(["INVALID_ARGUMENT", field]);
    }
  });

  it("answers NOT_FOUND for a rule on an entity that does not exist, ALREADY_EXISTS for a second of one name", async () => {
    const missing = await failure(
      running.client.unary("AdminService", "CreateAuthorizationRule", {
        entityPath: unique("nowhere"),
        name: "r",
        rights: [2],
      }),
    );
    expect(missing.codeName).toBe("NOT_FOUND");
    const queue = unique("twice");
    await running.client.createQueue(queue);
    await createRule(queue, "Reader", ["ACCESS_RIGHT_LISTEN"]);
    const again = await failure(
      running.client.unary("AdminService", "CreateAuthorizationRule", {
        entityPath: queue,
        name: "reader",
        rights: [3],
      }),
    );
    expect(again.codeName).toBe("ALREADY_EXISTS");
    const listed = await running.client.unary<{ rules: RuleKeys[] }>(
      "AdminService",
      "ListAuthorizationRules",
      { entityPath: queue },
    );
    expect(listed.rules.map((r) => [r.name, r.rights])).toEqual([
      ["Reader", ["ACCESS_RIGHT_LISTEN"]],
    ]);
  });
});
