import type { ReceivedMessage } from "../../gen/ts/sessionbus/v1/message_pb.js";
import { MessageState } from "../../gen/ts/sessionbus/v1/message_pb.js";
import { showTime } from "./format.js";

/** Peeked messages, one row each; a click selects one, checkboxes (when given) pick many. */
export function MessageTable({
  messages,
  selected,
  onSelect,
  checked,
  onCheck,
}: {
  messages: ReceivedMessage[];
  selected: bigint | undefined;
  onSelect: (m: ReceivedMessage) => void;
  checked?: Set<bigint>;
  onCheck?: (sequence: bigint, on: boolean) => void;
}) {
  return (
    <table data-testid="messages">
      <thead>
        <tr>
          {onCheck && <th />}
          <th class="n">Seq</th>
          <th>Message id</th>
          <th>State</th>
          <th>Session</th>
          <th>Subject</th>
          <th>Enqueued</th>
          <th>Dead-letter reason</th>
        </tr>
      </thead>
      <tbody>
        {messages.map((m) => (
          <tr
            key={String(m.sequenceNumber)}
            data-sequence={String(m.sequenceNumber)}
            class={selected === m.sequenceNumber ? "selected" : ""}
            onClick={() => onSelect(m)}
          >
            {onCheck && (
              <td>
                <input
                  type="checkbox"
                  aria-label={`select ${m.sequenceNumber}`}
                  checked={checked?.has(m.sequenceNumber) ?? false}
                  onClick={(e) => e.stopPropagation()}
                  onChange={(e) => onCheck(m.sequenceNumber, e.currentTarget.checked)}
                />
              </td>
            )}
            <td class="n">{String(m.sequenceNumber)}</td>
            <td>{m.message?.messageId}</td>
            <td>{(MessageState[m.state] ?? "").toLowerCase()}</td>
            <td>{m.message?.sessionId ?? ""}</td>
            <td>{m.message?.subject}</td>
            <td>{showTime(m.enqueuedTime)}</td>
            <td>{m.deadLetterReason}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
