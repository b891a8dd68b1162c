import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import {
  admin,
  errorText,
  forgetConnectionString,
  hasConnectionString,
  needsToken,
  saveConnectionString,
} from "./api.js";
import { EntityPage } from "./entity-page.js";
import { Overview } from "./overview.js";
import { useRoute } from "./router.js";
import { SessionPage } from "./session-page.js";
import "./styles.css";

type Access = "checking" | "ok" | "needs-token";

/**
 * The console: it first asks the broker for its queues; when the broker wants a token, it
 * asks for a connection string (kept in this tab's session storage only) and signs tokens
 * from it.
 */
function App() {
  const [access, setAccess] = useState<Access>("checking");
  const [problem, setProblem] = useState<string>();
  const check = () => {
    setAccess("checking");
    admin.listQueues({ pageSize: 1 }).then(
      () => {
        setProblem(undefined);
        setAccess("ok");
      },
      (error: unknown) => {
        setProblem(errorText(error));
        setAccess(needsToken(error) ? "needs-token" : "ok");
      },
    );
  };
  useEffect(check, []);
  return (
    <>
      <header>
        <a href="#/" class="brand">
          sessionbus console
        </a>
        {hasConnectionString() && (
          <button
            type="button"
            class="link"
            onClick={() => {
              forgetConnectionString();
              check();
            }}
          >
            forget connection string
          </button>
        )}
      </header>
      <main>
        {access === "checking" && <p class="muted">Connecting…</p>}
        {access === "needs-token" && <ConnectForm problem={problem} onDone={check} />}
        {access === "ok" && <Page />}
      </main>
    </>
  );
}

function Page() {
  const route = useRoute();
  if (route.page === "entity") return <EntityPage path={route.path} tab={route.tab} />;
  if (route.page === "session") {
    return <SessionPage entityPath={route.path} sessionId={route.sessionId} />;
  }
  return <Overview />;
}

function ConnectForm({ problem, onDone }: { problem?: string; onDone: () => void }) {
  const [text, setText] = useState("");
  const [invalid, setInvalid] = useState<string>();
  return (
    <form
      class="connect"
      data-testid="connect-form"
      onSubmit={(event) => {
        event.preventDefault();
        try {
          saveConnectionString(text);
          setInvalid(undefined);
          onDone();
        } catch (error) {
          setInvalid(errorText(error));
        }
      }}
    >
      <h2>Connect</h2>
      <p>
        This broker requires shared access tokens. Paste a connection string of an authorization
        rule with Manage rights; it is kept in this tab only (session storage) and signs a token for
        each hour.
      </p>
      {problem && hasConnectionString() && <p class="error">{problem}</p>}
      {invalid && <p class="error">{invalid}</p>}
      <input
        name="connectionString"
        type="password"
        autocomplete="off"
        placeholder="Endpoint=sb://host:port/;SharedAccessKeyName=…;SharedAccessKey=…"
        value={text}
        onInput={(e) => setText(e.currentTarget.value)}
      />
      <button type="submit">Connect</button>
    </form>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
