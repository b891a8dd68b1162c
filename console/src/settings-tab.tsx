import { durationMs } from "@bufbuild/protobuf/wkt";
import { useState } from "preact/hooks";
import { admin, errorText } from "./api.js";
import { showDuration, showSize } from "./format.js";
import { subscriptionOf } from "./router.js";
import { usePoll } from "./use-poll.js";

interface Editable {
  lockSeconds: string;
  maxDeliveryCount: string;
  ttlSeconds: string;
  deadLetterOnExpiry: boolean;
}

const seconds = (text: string) =>
  text === "" ? undefined : { seconds: BigInt(Math.round(Number(text))) };

/** A queue's or subscription's properties (editable) and, for a subscription, its rules. */
export function SettingsTab({ entityPath }: { entityPath: string }) {
  const subscription = subscriptionOf(entityPath);
  const entity = usePoll(async () => {
    if (subscription) {
      const s = (await admin.getSubscription(subscription)).subscription;
      return { properties: s?.properties, info: s?.runtimeInfo };
    }
    const q = (await admin.getQueue({ name: entityPath })).queue;
    return { properties: q?.properties, info: q?.runtimeInfo };
  }, [entityPath]);
  const [edit, setEdit] = useState<Editable>();
  const [problem, setProblem] = useState<string>();
  const p = entity.value?.properties;
  const startEdit = () =>
    setEdit({
      lockSeconds: p?.lockDuration ? String(durationMs(p.lockDuration) / 1000) : "",
      maxDeliveryCount: String(p?.maxDeliveryCount ?? ""),
      ttlSeconds: p?.defaultMessageTtl ? String(durationMs(p.defaultMessageTtl) / 1000) : "",
      deadLetterOnExpiry: p?.deadLetteringOnMessageExpiration ?? false,
    });
  const save = async (event: Event) => {
    event.preventDefault();
    if (!edit) return;
    const properties = {
      lockDuration: seconds(edit.lockSeconds),
      maxDeliveryCount: edit.maxDeliveryCount === "" ? undefined : Number(edit.maxDeliveryCount),
      defaultMessageTtl: seconds(edit.ttlSeconds),
      deadLetteringOnMessageExpiration: edit.deadLetterOnExpiry,
    };
    try {
      if (subscription) await admin.updateSubscription({ ...subscription, properties });
      else await admin.updateQueue({ name: entityPath, properties });
      setEdit(undefined);
      setProblem(undefined);
      entity.reload();
    } catch (error) {
      setProblem(errorText(error));
    }
  };
  const rows: [string, string][] = p
    ? [
        ["Requires session", String(p.requiresSession ?? false)],
        ["Lock duration", showDuration(p.lockDuration)],
        ["Max delivery count", String(p.maxDeliveryCount ?? "")],
        ["Default message TTL", showDuration(p.defaultMessageTtl) || "none"],
        ["Dead-letter on expiry", String(p.deadLetteringOnMessageExpiration ?? false)],
        ["Max session state", showSize(p.maxSessionStateSizeBytes ?? 0n)],
        ["Size", showSize(entity.value?.info?.sizeBytes ?? 0n)],
      ]
    : [];
  return (
    <div>
      {(entity.error || problem) && <p class="error">{problem ?? entity.error}</p>}
      {edit ? (
        <form class="grid" onSubmit={save}>
          <label>
            Lock duration (s)
            <input
              value={edit.lockSeconds}
              onInput={(e) => setEdit({ ...edit, lockSeconds: e.currentTarget.value })}
            />
          </label>
          <label>
            Max delivery count
            <input
              value={edit.maxDeliveryCount}
              onInput={(e) => setEdit({ ...edit, maxDeliveryCount: e.currentTarget.value })}
            />
          </label>
          <label>
            Default message TTL (s)
            <input
              value={edit.ttlSeconds}
              onInput={(e) => setEdit({ ...edit, ttlSeconds: e.currentTarget.value })}
            />
          </label>
          <label>
            <input
              type="checkbox"
              checked={edit.deadLetterOnExpiry}
              onChange={(e) => setEdit({ ...edit, deadLetterOnExpiry: e.currentTarget.checked })}
            />{" "}
            dead-letter on expiry
          </label>
          <div class="row">
            <button type="submit">Save</button>
            <button type="button" onClick={() => setEdit(undefined)}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <>
          <table class="props" data-testid="properties">
            <tbody>
              {rows.map(([k, v]) => (
                <tr key={k}>
                  <th>{k}</th>
                  <td>{v}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <button type="button" onClick={startEdit} disabled={!p}>
            Edit
          </button>
        </>
      )}
      {subscription && <Rules topicName={subscription.topicName} name={subscription.name} />}
    </div>
  );
}

function Rules({ topicName, name }: { topicName: string; name: string }) {
  const rules = usePoll(
    async () => (await admin.listRules({ topicName, subscriptionName: name })).rules,
    [topicName, name],
  );
  const [ruleName, setRuleName] = useState("");
  const [expression, setExpression] = useState("");
  const [problem, setProblem] = useState<string>();
  const act = (work: Promise<unknown>) =>
    work.then(
      () => {
        setProblem(undefined);
        rules.reload();
      },
      (e: unknown) => setProblem(errorText(e)),
    );
  return (
    <div>
      <h3>Rules</h3>
      {(problem || rules.error) && <p class="error">{problem ?? rules.error}</p>}
      <table data-testid="rules">
        <tbody>
          {rules.value?.map((rule) => (
            <tr key={rule.name}>
              <td>{rule.name}</td>
              <td>
                <code>
                  {rule.filter.case === "sqlFilter"
                    ? rule.filter.value.expression
                    : rule.filter.case === "correlationFilter"
                      ? `correlation ${JSON.stringify(rule.filter.value, (_, v) => (typeof v === "bigint" ? String(v) : v))}`
                      : (rule.filter.case ?? "true filter")}
                </code>
              </td>
              <td>
                <button
                  type="button"
                  class="link"
                  onClick={() =>
                    act(
                      admin.deleteRule({ topicName, subscriptionName: name, ruleName: rule.name }),
                    )
                  }
                >
                  delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          act(
            admin.createRule({
              topicName,
              subscriptionName: name,
              rule: { name: ruleName, filter: { case: "sqlFilter", value: { expression } } },
            }),
          );
        }}
      >
        <input
          placeholder="rule name"
          value={ruleName}
          onInput={(e) => setRuleName(e.currentTarget.value)}
        />
        <input
          placeholder="SQL filter, e.g. priority > 2"
          value={expression}
          size={40}
          onInput={(e) => setExpression(e.currentTarget.value)}
        />
        <button type="submit">Add rule</button>
      </form>
    </div>
  );
}
