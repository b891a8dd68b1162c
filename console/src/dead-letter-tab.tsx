import { useState } from "preact/hooks";
import type { ReceivedMessage } from "../../gen/ts/sessionbus/v1/message_pb.js";
import { errorText, messaging } from "./api.js";
import { MessageDetail } from "./message-detail.js";
import { MessageTable } from "./message-table.js";
import { PagerButtons } from "./pager-buttons.js";
import { usePeekPages } from "./peek-pager.js";

/**
 * The dead-letter queue of a queue or subscription: peek, resubmit the selected messages to
 * the entity (ResubmitDeadLetteredMessages, safe to repeat) or purge them all.
 */
export function DeadLetterTab({ entityPath }: { entityPath: string }) {
  const pages = usePeekPages(`${entityPath}/$deadletterqueue`);
  const [selected, setSelected] = useState<ReceivedMessage>();
  const [checked, setChecked] = useState<Set<bigint>>(new Set());
  const [outcome, setOutcome] = useState<string>();
  const [problem, setProblem] = useState<string>();
  const check = (sequence: bigint, on: boolean) => {
    const next = new Set(checked);
    if (on) next.add(sequence);
    else next.delete(sequence);
    setChecked(next);
  };
  const allChecked = pages.messages.length > 0 && checked.size === pages.messages.length;
  const resubmit = async () => {
    try {
      const { results } = await messaging.resubmitDeadLetteredMessages({
        entityPath,
        sequenceNumbers: [...checked],
      });
      const moved = results.filter((r) => r.resubmitted).length;
      setOutcome(`Resubmitted ${moved} message${moved === 1 ? "" : "s"} to ${entityPath}.`);
      setProblem(undefined);
      setChecked(new Set());
      setSelected(undefined);
    } catch (error) {
      setProblem(errorText(error));
    }
    pages.reload();
  };
  const purge = async () => {
    if (!confirm(`Remove every message of the dead-letter queue of "${entityPath}"?`)) return;
    try {
      const { purgedCount } = await messaging.purgeDeadLetteredMessages({ entityPath });
      setOutcome(`Purged ${purgedCount} messages.`);
      setProblem(undefined);
      setChecked(new Set());
      setSelected(undefined);
    } catch (error) {
      setProblem(errorText(error));
    }
    pages.reload();
  };
  return (
    <div>
      <div class="row">
        <label>
          <input
            type="checkbox"
            aria-label="select all"
            checked={allChecked}
            onChange={(e) =>
              setChecked(
                e.currentTarget.checked
                  ? new Set(pages.messages.map((m) => m.sequenceNumber))
                  : new Set(),
              )
            }
          />{" "}
          all
        </label>
        <button
          type="button"
          disabled={checked.size === 0}
          onClick={resubmit}
          data-testid="resubmit"
        >
          Resubmit {checked.size || ""}
        </button>
        <button type="button" class="danger" onClick={purge} data-testid="purge">
          Purge
        </button>
        <PagerButtons pages={pages} />
      </div>
      {outcome && (
        <p class="ok" data-testid="outcome">
          {outcome}
        </p>
      )}
      {(problem || pages.error) && <p class="error">{problem ?? pages.error}</p>}
      <div class="split">
        <MessageTable
          messages={pages.messages}
          selected={selected?.sequenceNumber}
          onSelect={setSelected}
          checked={checked}
          onCheck={check}
        />
        {selected && <MessageDetail received={selected} />}
      </div>
      {pages.value && pages.messages.length === 0 && (
        <p class="muted">The dead-letter queue is empty.</p>
      )}
    </div>
  );
}
