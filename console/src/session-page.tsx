import { messaging } from "./api.js";
import { BytesPanel } from "./bytes-view.js";
import { MessagesTab } from "./messages-tab.js";
import { entityHref } from "./router.js";
import { usePoll } from "./use-poll.js";

/** One session: its state (read without its lock, PeekSessionState) and its messages. */
export function SessionPage({ entityPath, sessionId }: { entityPath: string; sessionId: string }) {
  const state = usePoll(
    () => messaging.peekSessionState({ entityPath, sessionId }),
    [entityPath, sessionId],
  );
  const bytes = state.value?.state;
  return (
    <section>
      <p>
        <a href={entityHref(entityPath, "sessions")}>← sessions of {entityPath}</a>
      </p>
      <h2>
        Session <code data-testid="session-id">{sessionId}</code>
      </h2>
      <h3>
        State{" "}
        <button type="button" onClick={state.reload}>
          Refresh
        </button>
      </h3>
      {state.error && <p class="error">{state.error}</p>}
      {state.value &&
        (bytes === undefined ? (
          <p class="muted" data-testid="session-state-none">
            No state.
          </p>
        ) : (
          <BytesPanel bytes={bytes} testId="session-state" />
        ))}
      <h3>Messages</h3>
      <MessagesTab entityPath={entityPath} sessionId={sessionId} />
    </section>
  );
}
