import { useState } from "preact/hooks";
import { type BytesView, defaultView, showBytes } from "./format.js";

/** Bytes (a body, a session state) with a text / JSON / hex switch. */
export function BytesPanel({
  bytes,
  contentType,
  testId,
}: {
  bytes: Uint8Array;
  contentType?: string;
  testId: string;
}) {
  const [view, setView] = useState<BytesView>(() => defaultView(contentType, bytes));
  return (
    <div>
      <div class="row">
        {(["text", "json", "hex"] as const).map((each) => (
          <label key={each}>
            <input
              type="radio"
              name={`${testId}-view`}
              checked={view === each}
              onChange={() => setView(each)}
            />{" "}
            {each}
          </label>
        ))}
        <span class="muted">{bytes.length} bytes</span>
      </div>
      <pre data-testid={testId}>{showBytes(bytes, view)}</pre>
    </div>
  );
}
