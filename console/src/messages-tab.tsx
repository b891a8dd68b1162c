import { useState } from "preact/hooks";
import type { ReceivedMessage } from "../../gen/ts/sessionbus/v1/message_pb.js";
import { MessageState } from "../../gen/ts/sessionbus/v1/message_pb.js";
import { MessageDetail } from "./message-detail.js";
import { MessageTable } from "./message-table.js";
import { PagerButtons } from "./pager-buttons.js";
import { usePeekPages } from "./peek-pager.js";

const STATES = {
  all: undefined,
  active: MessageState.ACTIVE,
  scheduled: MessageState.SCHEDULED,
  deferred: MessageState.DEFERRED,
} as const;

/** Peeked active, scheduled and deferred messages of an entity (or of one of its sessions). */
export function MessagesTab({ entityPath, sessionId }: { entityPath: string; sessionId?: string }) {
  const pages = usePeekPages(entityPath, sessionId);
  const [state, setState] = useState<keyof typeof STATES>("all");
  const [selected, setSelected] = useState<ReceivedMessage>();
  const wanted = STATES[state];
  const shown = pages.messages.filter((m) => wanted === undefined || m.state === wanted);
  return (
    <div>
      <div class="row">
        <select
          value={state}
          onChange={(e) => setState(e.currentTarget.value as keyof typeof STATES)}
          aria-label="state"
        >
          {Object.keys(STATES).map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <PagerButtons pages={pages} />
      </div>
      {pages.error && <p class="error">{pages.error}</p>}
      <div class="split">
        <MessageTable messages={shown} selected={selected?.sequenceNumber} onSelect={setSelected} />
        {selected && <MessageDetail received={selected} />}
      </div>
      {pages.value && shown.length === 0 && <p class="muted">No messages.</p>}
    </div>
  );
}
