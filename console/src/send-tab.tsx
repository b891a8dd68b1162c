import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useState } from "preact/hooks";
import type { PropertyValue } from "../../gen/ts/sessionbus/v1/message_pb.js";
import { errorText, messaging } from "./api.js";
import { TextField } from "./text-field.js";

/**
 * Sends one message to a queue or topic: body, content type, session id, application
 * properties ("name=value" lines: numbers, true/false, else strings), time to live and a
 * schedule.
 */
export function SendTab({ entityPath }: { entityPath: string }) {
  const [body, setBody] = useState("");
  const [contentType, setContentType] = useState("application/json");
  const [sessionId, setSessionId] = useState("");
  const [messageId, setMessageId] = useState("");
  const [subject, setSubject] = useState("");
  const [properties, setProperties] = useState("");
  const [ttlSeconds, setTtlSeconds] = useState("");
  const [scheduleAt, setScheduleAt] = useState("");
  const [outcome, setOutcome] = useState<string>();
  const [problem, setProblem] = useState<string>();
  const submit = async (event: Event) => {
    event.preventDefault();
    try {
      const message = {
        messageId,
        subject,
        contentType,
        body: new TextEncoder().encode(body),
        sessionId: sessionId === "" ? undefined : sessionId,
        applicationProperties: parseProperties(properties),
        timeToLive:
          ttlSeconds === "" ? undefined : { seconds: BigInt(Math.round(Number(ttlSeconds))) },
        scheduledEnqueueTime:
          scheduleAt === "" ? undefined : timestampFromDate(new Date(scheduleAt)),
      };
      const { results } = await messaging.send({ entityPath, messages: [message] });
      const result = results[0];
      setOutcome(
        `Sent: sequence number ${result?.sequenceNumber}, message id ${result?.messageId}${result?.duplicate ? " (a duplicate: dropped)" : ""}.`,
      );
      setProblem(undefined);
    } catch (error) {
      setProblem(errorText(error));
    }
  };
  return (
    <form class="send" onSubmit={submit} data-testid="send-form">
      <label>
        Body
        <textarea
          name="body"
          rows={6}
          value={body}
          onInput={(e) => setBody(e.currentTarget.value)}
        />
      </label>
      <div class="grid">
        <TextField
          label="Content type"
          name="contentType"
          value={contentType}
          set={setContentType}
        />
        <TextField label="Session id" name="sessionId" value={sessionId} set={setSessionId} />
        <TextField
          label="Message id"
          name="messageId"
          placeholder="generated"
          value={messageId}
          set={setMessageId}
        />
        <TextField label="Subject" name="subject" value={subject} set={setSubject} />
        <label>
          Time to live (s)
          <input
            name="ttl"
            type="number"
            min="1"
            value={ttlSeconds}
            onInput={(e) => setTtlSeconds(e.currentTarget.value)}
          />
        </label>
        <label>
          Schedule for
          <input
            name="scheduleAt"
            type="datetime-local"
            value={scheduleAt}
            onInput={(e) => setScheduleAt(e.currentTarget.value)}
          />
        </label>
      </div>
      <label>
        Application properties (name=value, one a line)
        <textarea
          name="properties"
          rows={3}
          value={properties}
          onInput={(e) => setProperties(e.currentTarget.value)}
        />
      </label>
      <button type="submit">Send</button>
      {outcome && (
        <p class="ok" data-testid="send-outcome">
          {outcome}
        </p>
      )}
      {problem && <p class="error">{problem}</p>}
    </form>
  );
}

function parseProperties(text: string): Record<string, PropertyValue> {
  const properties: Record<string, PropertyValue> = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (at <= 0) continue;
    const name = line.slice(0, at).trim();
    const raw = line.slice(at + 1).trim();
    let value: PropertyValue["value"];
    if (/^-?\d+$/.test(raw)) value = { case: "intValue", value: BigInt(raw) };
    else if (raw !== "" && Number.isFinite(Number(raw)))
      value = { case: "doubleValue", value: Number(raw) };
    else if (raw === "true" || raw === "false")
      value = { case: "boolValue", value: raw === "true" };
    else value = { case: "stringValue", value: raw };
    properties[name] = { value } as PropertyValue;
  }
  return properties;
}
