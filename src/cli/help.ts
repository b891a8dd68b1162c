/** The --help texts of the CLI. */

const EXIT_CODES = `Exit codes:
  0  ok
  1  broker error (the reason goes to stderr, e.g. "ENTITY_NOT_FOUND: ...")
  2  usage error (unknown command or flag, missing argument)
  3  nothing received within --wait (receive)`;

const GLOBAL = `Global options:
  --url URL      the broker (default: $SESSIONBUS_URL or http://127.0.0.1:50051)
  --json         machine-readable output: one JSON document per command, bigints as strings
  -h, --help     show help
  -V, --version  show the version`;

export const MAIN_HELP = `sessionbus - command line client of the sessionbus broker

Usage: sessionbus [--url URL] [--json] COMMAND [ARGS...]

Commands:
  serve                                   run the broker (like npm start)
  queue create|list|show|delete [NAME]    manage queues
  send QUEUE --body TEXT                  send messages
  receive QUEUE                           receive (and complete) messages
  peek QUEUE                              read messages without locking them
  sessions list QUEUE                     list the sessions of a session queue
  state get|set QUEUE SESSION [VALUE]     read or write a session's state
  topic, subscription                     not supported yet

Run "sessionbus COMMAND --help" for the options of a command.

${GLOBAL}

${EXIT_CODES}

Examples:
  sessionbus queue create orders --requires-session
  sessionbus send orders --session customer-1 --body "hello"
  sessionbus receive orders --next-session --max 10
  sessionbus --json peek orders --max 50`;

export const COMMAND_HELP: Record<string, string> = {
  serve: `Usage: sessionbus serve

Runs the broker in the foreground until SIGTERM or SIGINT, configured by the environment
like npm start: SESSIONBUS_HOST, SESSIONBUS_PORT, NATS_URL, SESSIONBUS_DATA_DIR,
NATS_SERVER_BIN (see the README).

Examples:
  sessionbus serve
  SESSIONBUS_PORT=0 NATS_URL=nats://127.0.0.1:4222 sessionbus serve`,

  queue: `Usage: sessionbus queue create NAME [--requires-session] [--lock-duration 30s] [--max-delivery-count N]
       sessionbus queue list
       sessionbus queue show NAME
       sessionbus queue delete NAME

Options of create:
  --requires-session        every message must carry a session id (fixed at creation)
  --lock-duration DURATION  message and session lock duration, 5s to 5m (e.g. 30s, 1m)
  --max-delivery-count N    deliveries before a message is dead-lettered

Examples:
  sessionbus queue create orders --requires-session --lock-duration 30s
  sessionbus queue list
  sessionbus --json queue show orders
  sessionbus queue delete orders`,

  send: `Usage: sessionbus send QUEUE --body TEXT [--session ID] [--count N]

Options:
  --body TEXT     the message body (UTF-8)
  --session ID    the session id (required on session queues)
  --count N       send N copies (in batches of up to 500), default 1

Examples:
  sessionbus send orders --body "hello"
  sessionbus send orders --session customer-1 --body "order 42" --count 3`,

  receive: `Usage: sessionbus receive QUEUE [--session ID | --next-session] [--max N] [--wait 5s] [--no-complete]

Receives messages under a lock, prints them and completes them, until --max messages
arrived or none came for --wait. Session queues need --session or --next-session.
Progress goes to stderr every 1,000 messages.

Options:
  --session ID       lock and receive the named session
  --next-session     lock the next session with a message
  --max N            stop after N messages (default: no limit)
  --wait DURATION    how long to wait for a message (default 5s; bare numbers are seconds)
  --no-complete      leave the messages unsettled: they become receivable again when the
                     lock is released (sessions) or runs out

Exit code 3 when nothing arrived within --wait.

Examples:
  sessionbus receive orders --max 1
  sessionbus receive orders --session customer-1 --wait 2s
  sessionbus --json receive orders --next-session --max 100`,

  peek: `Usage: sessionbus peek QUEUE [--session ID] [--from SEQ] [--max N]

Options:
  --session ID   only the messages of this session
  --from SEQ     first sequence number to look at (default: the oldest)
  --max N        at most N messages, up to 250 (default 10)

Examples:
  sessionbus peek orders
  sessionbus --json peek orders --session customer-1 --from 100 --max 50`,

  sessions: `Usage: sessionbus sessions list QUEUE

Lists the sessions with a message or a state.

Examples:
  sessionbus sessions list orders
  sessionbus --json sessions list orders`,

  state: `Usage: sessionbus state get QUEUE SESSION
       sessionbus state set QUEUE SESSION VALUE

Reads or replaces a session's state (as UTF-8 text); both lock the session briefly.

Examples:
  sessionbus state set orders customer-1 '{"step":2}'
  sessionbus state get orders customer-1`,

  topic: `Usage: sessionbus topic ...

Not supported yet: topics arrive with a later version.

Examples:
  sessionbus queue --help`,
};
COMMAND_HELP.subscription = COMMAND_HELP.topic as string;

/** A command's help, with the global options and exit codes. */
export function commandHelp(command: string): string {
  return `${COMMAND_HELP[command] ?? MAIN_HELP}\n\n${GLOBAL}\n\n${EXIT_CODES}`;
}
