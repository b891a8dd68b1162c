import { useEffect, useState } from "preact/hooks";

/**
 * The console's pages, in the URL's hash:
 *   #/                                   overview
 *   #/entity/<path>/<tab>                a queue or subscription (tab: messages, deadletter,
 *                                        sessions, send, settings)
 *   #/entity/<path>/session/<id>         one session
 * Path and session id are URI-encoded (a path holds "/").
 */
export type Route =
  | { page: "overview" }
  | { page: "entity"; path: string; tab: string }
  | { page: "session"; path: string; sessionId: string };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/");
  try {
    if (parts[0] === "entity" && parts[1]) {
      const path = decodeURIComponent(parts[1]);
      if (parts[2] === "session" && parts[3] !== undefined) {
        return { page: "session", path, sessionId: decodeURIComponent(parts[3]) };
      }
      return { page: "entity", path, tab: parts[2] || "messages" };
    }
  } catch {
    // A malformed escape: the overview.
  }
  return { page: "overview" };
}

export function entityHref(path: string, tab = "messages"): string {
  return `#/entity/${encodeURIComponent(path)}/${tab}`;
}

export function sessionHref(path: string, sessionId: string): string {
  return `#/entity/${encodeURIComponent(path)}/session/${encodeURIComponent(sessionId)}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const changed = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return route;
}

/** "topic/subscriptions/name" → its topic and name; undefined for a queue. */
export function subscriptionOf(path: string): { topicName: string; name: string } | undefined {
  const match = /^(.*)\/subscriptions\/([^/]+)$/i.exec(path);
  return match ? { topicName: match[1] as string, name: match[2] as string } : undefined;
}
