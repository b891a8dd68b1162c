import { useState } from "preact/hooks";
import type { EntityRuntimeInfo } from "../../gen/ts/sessionbus/v1/queue_pb.js";
import { admin, errorText } from "./api.js";
import { showSize } from "./format.js";
import { entityHref } from "./router.js";
import { usePoll } from "./use-poll.js";

const REFRESH_MS = 2000;

interface Row {
  kind: "queue" | "topic" | "subscription";
  path: string;
  label: string;
  requiresSession: boolean;
  info: EntityRuntimeInfo | undefined;
  topicName?: string;
  name?: string;
}

async function loadEntities(): Promise<Row[]> {
  const rows: Row[] = [];
  const [queues, topics] = await Promise.all([
    admin.listQueues({ pageSize: 1000 }),
    admin.listTopics({ pageSize: 1000 }),
  ]);
  for (const q of queues.queues) {
    rows.push({
      kind: "queue",
      path: q.name,
      label: q.name,
      requiresSession: q.properties?.requiresSession ?? false,
      info: q.runtimeInfo,
    });
  }
  const subscriptions = await Promise.all(
    topics.topics.map((t) => admin.listSubscriptions({ topicName: t.name, pageSize: 1000 })),
  );
  topics.topics.forEach((t, i) => {
    rows.push({
      kind: "topic",
      path: t.name,
      label: t.name,
      requiresSession: false,
      info: t.runtimeInfo,
    });
    for (const s of subscriptions[i]?.subscriptions ?? []) {
      rows.push({
        kind: "subscription",
        path: `${t.name}/subscriptions/${s.name}`,
        label: s.name,
        requiresSession: s.properties?.requiresSession ?? false,
        info: s.runtimeInfo,
        topicName: t.name,
        name: s.name,
      });
    }
  });
  return rows;
}

export function Overview() {
  const { value: rows, error, reload } = usePoll(loadEntities, [], REFRESH_MS);
  const [problem, setProblem] = useState<string>();
  const act = (work: () => Promise<unknown>) =>
    work().then(
      () => {
        setProblem(undefined);
        reload();
      },
      (e: unknown) => setProblem(errorText(e)),
    );
  const remove = (row: Row) => {
    if (!confirm(`Delete ${row.kind} "${row.path}" with all its messages?`)) return;
    act(() =>
      row.kind === "queue"
        ? admin.deleteQueue({ name: row.path })
        : row.kind === "topic"
          ? admin.deleteTopic({ name: row.path })
          : admin.deleteSubscription({ topicName: row.topicName ?? "", name: row.name ?? "" }),
    );
  };
  return (
    <section>
      <h2>Entities</h2>
      {error && <p class="error">{error}</p>}
      {problem && <p class="error">{problem}</p>}
      <table data-testid="entities">
        <thead>
          <tr>
            <th>Entity</th>
            <th>Kind</th>
            <th class="n">Active</th>
            <th class="n">Scheduled</th>
            <th class="n">Deferred</th>
            <th class="n">Dead-lettered</th>
            <th class="n">Sessions</th>
            <th class="n">Size</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {rows?.map((row) => (
            <tr key={`${row.kind}:${row.path}`} data-entity={row.path} class={row.kind}>
              <td>
                {row.kind === "topic" ? (
                  <strong>{row.label}</strong>
                ) : (
                  <a href={entityHref(row.path)}>
                    {row.kind === "subscription" ? `↳ ${row.label}` : row.label}
                  </a>
                )}
              </td>
              <td>
                {row.kind}
                {row.requiresSession ? " · sessions" : ""}
              </td>
              <td class="n" data-count="active">
                {String(row.info?.activeMessageCount ?? 0n)}
              </td>
              <td class="n" data-count="scheduled">
                {String(row.info?.scheduledMessageCount ?? 0n)}
              </td>
              <td class="n" data-count="deferred">
                {String(row.info?.deferredMessageCount ?? 0n)}
              </td>
              <td class="n" data-count="dead-lettered">
                {row.kind === "topic" ? (
                  ""
                ) : (
                  <a href={entityHref(row.path, "deadletter")}>
                    {String(row.info?.deadLetterMessageCount ?? 0n)}
                  </a>
                )}
              </td>
              <td class="n" data-count="sessions">
                {row.requiresSession ? String(row.info?.sessionCount ?? 0n) : ""}
              </td>
              <td class="n">{showSize(row.info?.sizeBytes ?? 0n)}</td>
              <td>
                <button type="button" class="link" onClick={() => remove(row)}>
                  delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows?.length === 0 && <p class="muted">No queues or topics yet.</p>}
      <CreateForms
        act={act}
        topics={rows?.filter((r) => r.kind === "topic").map((r) => r.path) ?? []}
      />
    </section>
  );
}

function CreateForms({
  act,
  topics,
}: {
  act: (work: () => Promise<unknown>) => void;
  topics: string[];
}) {
  const [kind, setKind] = useState<"queue" | "topic" | "subscription">("queue");
  const [name, setName] = useState("");
  const [topic, setTopic] = useState("");
  const [sessions, setSessions] = useState(false);
  const submit = (event: Event) => {
    event.preventDefault();
    const requiresSession = sessions;
    act(() =>
      kind === "queue"
        ? admin.createQueue({ name, properties: { requiresSession } })
        : kind === "topic"
          ? admin.createTopic({ name })
          : admin.createSubscription({
              topicName: topic || topics[0] || "",
              name,
              properties: { requiresSession },
            }),
    );
    setName("");
  };
  return (
    <form class="row" onSubmit={submit} data-testid="create-entity">
      <strong>Create</strong>
      <select value={kind} onChange={(e) => setKind(e.currentTarget.value as typeof kind)}>
        <option value="queue">queue</option>
        <option value="topic">topic</option>
        <option value="subscription">subscription</option>
      </select>
      {kind === "subscription" && (
        <select value={topic} onChange={(e) => setTopic(e.currentTarget.value)}>
          {topics.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
      )}
      <input
        placeholder="name"
        value={name}
        required
        onInput={(e) => setName(e.currentTarget.value)}
      />
      {kind !== "topic" && (
        <label>
          <input
            type="checkbox"
            checked={sessions}
            onChange={(e) => setSessions(e.currentTarget.checked)}
          />{" "}
          requires sessions
        </label>
      )}
      <button type="submit">Create</button>
    </form>
  );
}
