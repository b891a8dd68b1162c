import { serveUntilStopped } from "./serve.js";

/**
 * `npm start`: runs the broker until SIGTERM or SIGINT, then shuts down gracefully; SIGHUP
 * re-reads the TLS certificate. The log is JSON lines on stdout (SESSIONBUS_LOG_LEVEL).
 */
void serveUntilStopped().then((code) => process.exit(code));
