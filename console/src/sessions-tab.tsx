import { errorText, messaging } from "./api.js";
import { showSize, showTime } from "./format.js";
import { sessionHref } from "./router.js";
import { usePoll } from "./use-poll.js";

/** The sessions of a session-enabled entity (first 1000), refreshed live. */
export function SessionsTab({ entityPath }: { entityPath: string }) {
  const { value, error } = usePoll(
    async () => (await messaging.listSessions({ entityPath, pageSize: 1000 })).sessions,
    [entityPath],
    2000,
  );
  return (
    <div>
      {error && <p class="error">{errorText(error)}</p>}
      <table data-testid="sessions">
        <thead>
          <tr>
            <th>Session id</th>
            <th>Locked</th>
            <th class="n">Messages</th>
            <th class="n">State size</th>
            <th>Last activity</th>
          </tr>
        </thead>
        <tbody>
          {value?.map((s) => (
            <tr key={s.sessionId} data-session={s.sessionId}>
              <td>
                <a href={sessionHref(entityPath, s.sessionId)}>{s.sessionId || '""'}</a>
              </td>
              <td>{s.locked ? `until ${showTime(s.lockedUntil)}` : "no"}</td>
              <td class="n">{String(s.messageCount)}</td>
              <td class="n">{showSize(s.stateSizeBytes)}</td>
              <td>{showTime(s.lastActivity)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {value?.length === 0 && <p class="muted">No sessions with messages or state.</p>}
    </div>
  );
}
