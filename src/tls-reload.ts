import type { RunningSessionbus } from "./app.js";

/**
 * What SIGHUP does (`npm start` and `sessionbus serve`): re-reads the TLS files and returns
 * the log line saying what happened. A bad new certificate is not taken: the line says why,
 * and both ports keep serving the old one.
 */
export function reloadTlsOnSignal(running: RunningSessionbus): { ok: boolean; line: string } {
  if (!running.tls) {
    return { ok: true, line: "SIGHUP received; TLS is off, nothing to reload" };
  }
  try {
    running.reloadTls();
    return { ok: true, line: "SIGHUP received, TLS certificate reloaded" };
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return {
      ok: false,
      line: `SIGHUP received, TLS certificate NOT reloaded, still serving the old one: ${why}`,
    };
  }
}
