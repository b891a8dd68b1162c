import { DeadLetterTab } from "./dead-letter-tab.js";
import { MessagesTab } from "./messages-tab.js";
import { entityHref, subscriptionOf } from "./router.js";
import { SendTab } from "./send-tab.js";
import { SessionsTab } from "./sessions-tab.js";
import { SettingsTab } from "./settings-tab.js";

const TABS = {
  messages: "Messages",
  deadletter: "Dead-letter queue",
  sessions: "Sessions",
  send: "Send",
  settings: "Properties",
} as const;

/** A queue or subscription, one tab at a time. */
export function EntityPage({ path, tab }: { path: string; tab: string }) {
  const subscription = subscriptionOf(path);
  // A subscription takes its messages from its topic: sends go there.
  const sendPath = subscription ? subscription.topicName : path;
  return (
    <section>
      <h2>
        {subscription ? "Subscription" : "Queue"} <code data-testid="entity-path">{path}</code>
      </h2>
      <nav class="tabs">
        {Object.entries(TABS).map(([key, label]) => (
          <a key={key} href={entityHref(path, key)} class={key === tab ? "current" : ""}>
            {key === "send" && subscription ? `Send to ${sendPath}` : label}
          </a>
        ))}
      </nav>
      {tab === "messages" && <MessagesTab entityPath={path} />}
      {tab === "deadletter" && <DeadLetterTab entityPath={path} />}
      {tab === "sessions" && <SessionsTab entityPath={path} />}
      {tab === "send" && <SendTab entityPath={sendPath} />}
      {tab === "settings" && <SettingsTab entityPath={path} />}
    </section>
  );
}
