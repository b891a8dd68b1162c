import type { ReceivedMessage } from "../../gen/ts/sessionbus/v1/message_pb.js";
import { MessageState } from "../../gen/ts/sessionbus/v1/message_pb.js";
import { BytesPanel } from "./bytes-view.js";
import { showDuration, showProperty, showTime } from "./format.js";

/** A message's system properties, application properties and body. */
export function MessageDetail({ received }: { received: ReceivedMessage }) {
  const m = received.message;
  const system: [string, string][] = [
    ["Sequence number", String(received.sequenceNumber)],
    ["State", MessageState[received.state] ?? ""],
    ["Message id", m?.messageId ?? ""],
    ["Session id", m?.sessionId ?? "(none)"],
    ["Content type", m?.contentType ?? ""],
    ["Subject", m?.subject ?? ""],
    ["Correlation id", m?.correlationId ?? ""],
    ["Reply to", m?.replyTo ?? ""],
    ["To", m?.to ?? ""],
    ["Time to live", showDuration(m?.timeToLive)],
    ["Enqueued", showTime(received.enqueuedTime)],
    ["Scheduled for", showTime(m?.scheduledEnqueueTime)],
    ["Expires", showTime(received.expiresAt)],
    ["Delivery count", String(received.deliveryCount)],
    ["Dead-letter reason", received.deadLetterReason],
    ["Dead-letter description", received.deadLetterDescription],
    ["Dead-letter source", received.deadLetterSource],
  ];
  const properties = Object.entries(m?.applicationProperties ?? {});
  return (
    <div class="detail" data-testid="message-detail">
      <h3>Message {String(received.sequenceNumber)}</h3>
      <table class="props">
        <tbody>
          {system
            .filter(([, v]) => v !== "")
            .map(([k, v]) => (
              <tr key={k}>
                <th>{k}</th>
                <td>{v}</td>
              </tr>
            ))}
        </tbody>
      </table>
      <h4>Application properties</h4>
      {properties.length === 0 ? (
        <p class="muted">none</p>
      ) : (
        <table class="props" data-testid="application-properties">
          <tbody>
            {properties.map(([k, v]) => (
              <tr key={k}>
                <th>{k}</th>
                <td>
                  {showProperty(v)} <span class="muted">{v.value.case?.replace("Value", "")}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h4>Body</h4>
      <BytesPanel bytes={m?.body ?? new Uint8Array()} contentType={m?.contentType} testId="body" />
    </div>
  );
}
