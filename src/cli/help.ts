/** The --help texts of the CLI. */

const EXIT_CODES = `Exit codes:
  0  ok
  1  broker error (the reason goes to stderr, e.g. "ENTITY_NOT_FOUND: ..."; for a bad
     rule, the field and the expression with a caret under the position follow; for
     "MISSING_RIGHT", the right; for "TOKEN_MISSING", where to find a connection string)
  2  usage error (unknown command or flag, missing argument)
  3  nothing received within --wait (receive)`;

const GLOBAL = `Global options:
  --connection-string STRING
                 the broker and the key to sign each call's token with (default:
                 $SESSIONBUS_CONNECTION_STRING), e.g. "Endpoint=sb://127.0.0.1:50051/;
                 SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=...;
                 UseDevelopmentEmulator=true". The broker writes its root connection string
                 to <data dir>/connection-string at its first start.
  --url URL      the broker's address, over the connection string's (default: $SESSIONBUS_URL,
                 else the connection string's endpoints, the next one tried when a broker
                 cannot be reached, else http://127.0.0.1:50051)
  --json         machine-readable output: one JSON document per command, bigints as strings
  -h, --help     show help
  -V, --version  show the version`;

export const MAIN_HELP = `sessionbus - command line client of the sessionbus broker

Usage: sessionbus [--connection-string STRING] [--url URL] [--json] COMMAND [ARGS...]

Commands:
  serve                                          run the broker (like npm start)
  queue create|get|list|update|delete [NAME]     manage queues
  topic create|get|list|update|delete [NAME]     manage topics
  subscription create|get|list|update|delete TOPIC [NAME]
                                                 manage a topic's subscriptions
  rule add|list|delete TOPIC SUBSCRIPTION [NAME] manage a subscription's rules
  send ENTITY --body TEXT                        send messages to a queue or topic
  receive ENTITY                                 receive (and complete) messages
  peek ENTITY                                    read messages without locking them
  sessions list ENTITY                           list the sessions of a session entity
  state get|set ENTITY SESSION [VALUE]           read or write a session's state
  token [--entity PATH] [--ttl DURATION]         print a shared access token for other clients

ENTITY is a queue, a topic (send only), a subscription "TOPIC/subscriptions/NAME" or
a dead-letter queue "PATH/$deadletterqueue" (receive, peek).

Run "sessionbus COMMAND --help" for the options of a command.

${GLOBAL}

${EXIT_CODES}

Examples:
  export SESSIONBUS_CONNECTION_STRING="$(cat ./data/connection-string)"
  sessionbus queue create orders --requires-session
  sessionbus send orders --session customer-1 --body "hello"
  sessionbus receive orders --next-session --max 10
  sessionbus --json peek orders --max 50
  sessionbus topic create events
  sessionbus subscription create events audit --sql "sys.Label = 'red'"
  sessionbus receive events/subscriptions/audit --max 10
  grpcurl -plaintext -H "authorization: $(sessionbus token)" 127.0.0.1:50051 list`;

export const COMMAND_HELP: Record<string, string> = {
  serve: `Usage: sessionbus serve

Runs the broker in the foreground until SIGTERM or SIGINT, configured by the environment
like npm start: SESSIONBUS_HOST, SESSIONBUS_PORT (gRPC), SESSIONBUS_HTTP_PORT (Connect,
gRPC-Web), SESSIONBUS_MAX_REQUEST_BYTES, NATS_URL (with NATS_CREDS, NATS_USER, NATS_PASSWORD,
NATS_TOKEN, NATS_TLS_CA, NATS_TLS_CERT, NATS_TLS_KEY), SESSIONBUS_REPLICAS,
SESSIONBUS_DATA_DIR, NATS_SERVER_BIN, SESSIONBUS_TLS_CERT, SESSIONBUS_TLS_KEY,
SESSIONBUS_TLS_CLIENT_CA, SESSIONBUS_AUTH, SESSIONBUS_ALLOW_INSECURE, SESSIONBUS_ROOT_KEY,
SESSIONBUS_LOG_LEVEL, SESSIONBUS_METRICS_TOKEN, SESSIONBUS_METRICS_MAX_ENTITIES (see
docs/configuration.md). SIGHUP re-reads the TLS certificate. The log is JSON lines on stdout;
Prometheus metrics are at /metrics on the HTTP port.

Examples:
  sessionbus serve
  SESSIONBUS_PORT=0 SESSIONBUS_HTTP_PORT=0 NATS_URL=nats://127.0.0.1:4222 sessionbus serve`,

  queue: `Usage: sessionbus queue create NAME [options]
       sessionbus queue update NAME options   (changes only the properties given)
       sessionbus queue list
       sessionbus queue get NAME      (or: show)
       sessionbus queue delete NAME

Options of create and update:
  --requires-session                     every message must carry a session id. Fixed at
                                         creation: an update that would change it exits 1
                                         (INVALID_ARGUMENT)
  --lock-duration DURATION               message and session lock duration, 5s to 5m
                                         (default 1m)
  --max-delivery-count N                 deliveries before a message is dead-lettered
                                         (default 10)
  --default-message-ttl DURATION         time to live of messages that set none, and cap
                                         of those that do (default: none, messages stay)
  --dead-lettering-on-expiration         expired messages go to the dead-letter queue
                                         (--no-dead-lettering-on-expiration: drop them)
  --max-message-size SIZE                largest message, 1KiB to 1000000 (default 256KiB)
  --max-session-state-size SIZE          largest session state, up to 100MiB (default 256KiB)
  --requires-duplicate-detection         drop messages whose message id was seen
                                         (--no-requires-duplicate-detection: turn it off)
  --duplicate-detection-window DURATION  20s to 7 days (default 10m)
  --max-size SIZE                        storage quota of the queue and its dead-letter
                                         queue, at least 1MiB (default 1GiB)

Durations take ms, s, m or h (a bare number is seconds); sizes are bytes, or take KiB,
MiB or GiB.

Examples:
  export SESSIONBUS_CONNECTION_STRING="$(cat ./data/connection-string)"
  sessionbus queue create orders --requires-session --lock-duration 30s
  sessionbus queue create audit --default-message-ttl 1h --dead-lettering-on-expiration \\
    --requires-duplicate-detection --duplicate-detection-window 5m --max-size 2GiB
  sessionbus queue update audit --max-delivery-count 5 --no-dead-lettering-on-expiration
  sessionbus queue list
  sessionbus --json queue show orders
  sessionbus queue delete orders`,

  send: `Usage: sessionbus send ENTITY --body TEXT [--session ID] [--count N] [--ttl DURATION]
                       [--schedule WHEN] [message fields]

ENTITY is a queue or a topic; a topic's subscriptions get a copy when one of their rules
matches.

Options:
  --body TEXT              the message body (UTF-8)
  --session ID             the session id (required on session queues and subscriptions)
  --count N                send N copies (in batches of up to 500), default 1
  --ttl DURATION           time to live (the entity's default message TTL caps it)
  --schedule WHEN          store the message as scheduled until WHEN: a delay (30s, 5m,
                           1h) or a time (2026-12-24T18:00:00Z); "peek" shows it as
                           scheduled until then
  --label TEXT             the label (sys.Label; also --subject)
  --correlation-id ID      the correlation id
  --message-id ID          the message id (default: generated by the broker)
  --property NAME=VALUE    an application property; repeat for more. A whole number is
                           sent as an int, a decimal as a double, true/false as a boolean,
                           anything else as a string; NAME:TYPE=VALUE says the type
                           (string, int, double, bool), e.g. zip:string=01234

Examples:
  sessionbus send orders --body "hello"
  sessionbus send orders --session customer-1 --body "order 42" --count 3
  sessionbus send orders --body "reminder" --schedule 10m --ttl 1h
  sessionbus send events --body "paint" --label red --property priority=5`,

  receive: `Usage: sessionbus receive ENTITY [--session ID | --next-session] [--max N] [--wait 5s] [--no-complete]

Receives messages under a lock, prints them and completes them, until --max messages
arrived or none came for --wait. ENTITY is a queue, a subscription
"TOPIC/subscriptions/NAME" or a dead-letter queue "PATH/$deadletterqueue". Session queues
and subscriptions need --session or --next-session (without either, the broker refuses
with SESSION_REQUIRED and stderr says which to add).
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
  sessionbus --json receive orders --next-session --max 100
  sessionbus receive events/subscriptions/audit --max 10`,

  peek: `Usage: sessionbus peek ENTITY [--session ID] [--from SEQ] [--max N]

ENTITY is a queue, a subscription "TOPIC/subscriptions/NAME" or a dead-letter queue.

Options:
  --session ID   only the messages of this session
  --from SEQ     first sequence number to look at (default: the oldest)
  --max N        at most N messages, up to 250 (default 10)

Examples:
  sessionbus peek orders
  sessionbus --json peek orders --session customer-1 --from 100 --max 50`,

  sessions: `Usage: sessionbus sessions list ENTITY

Lists the sessions with a message or a state, of a session queue or subscription.

Examples:
  sessionbus sessions list orders
  sessionbus --json sessions list orders`,

  state: `Usage: sessionbus state get ENTITY SESSION
       sessionbus state set ENTITY SESSION VALUE

ENTITY is a session queue or subscription.
Reads or replaces a session's state (as UTF-8 text); both lock the session briefly.

Examples:
  sessionbus state set orders customer-1 '{"step":2}'
  sessionbus state get orders customer-1`,

  topic: `Usage: sessionbus topic create NAME [options]
       sessionbus topic update NAME options   (changes only the properties given)
       sessionbus topic list
       sessionbus topic get NAME      (or: show)
       sessionbus topic delete NAME   (deletes its subscriptions too)

A topic is sent to ("sessionbus send TOPIC ...") and never received from; each of its
subscriptions gets a copy of the messages one of its rules matches.

Options of create and update:
  --default-message-ttl DURATION         time to live of messages that set none
  --max-message-size SIZE                largest message, 1KiB to 1000000 (default 256KiB)
  --requires-duplicate-detection         drop messages whose message id was seen
                                         (--no-requires-duplicate-detection: turn it off)
  --duplicate-detection-window DURATION  20s to 7 days (default 10m)
  --max-size SIZE                        storage quota of each subscription (default 1GiB)

Sizes are bytes, or take KiB, MiB or GiB.

Examples:
  sessionbus topic create events --requires-duplicate-detection --duplicate-detection-window 1m
  sessionbus topic update events --default-message-ttl 1h --max-size 2GiB
  sessionbus topic list
  sessionbus --json topic get events
  sessionbus topic delete events`,

  subscription: `Usage: sessionbus subscription create TOPIC NAME [options] [first rule]
       sessionbus subscription update TOPIC NAME options   (changes only the properties given)
       sessionbus subscription list TOPIC
       sessionbus subscription get TOPIC NAME      (with its rules; or: show)
       sessionbus subscription delete TOPIC NAME

A subscription is a queue of its own at "TOPIC/subscriptions/NAME": receive, peek,
sessions and state take that path, and its dead-letter queue is
"TOPIC/subscriptions/NAME/$deadletterqueue". It gets the messages sent after its creation
that one of its rules matches.

Options of create and update:
  --requires-session              every message must carry a session id; a matching message
                                  without one is dead-lettered. Fixed at creation: an update
                                  that would change it exits 1 (INVALID_ARGUMENT)
  --lock-duration DURATION        message and session lock duration, 5s to 5m
  --max-delivery-count N          deliveries before a message is dead-lettered
  --default-message-ttl DURATION  caps the time to live of its messages
  --dead-lettering-on-expiration  expired messages go to the dead-letter queue
                                  (--no-dead-lettering-on-expiration: drop them)
  --max-session-state-size SIZE   largest session state, up to 100MiB (default 256KiB)

The first rule (default: "$Default", matching every message), as with "rule add":
  --sql EXPR | correlation flags | --true | --false
  --rule-name NAME                its name (default "$Default")

Examples:
  sessionbus subscription create events audit
  sessionbus subscription create events reds --sql "sys.Label = 'red' AND priority > 3"
  sessionbus subscription create events vip --requires-session --property tier=gold
  sessionbus subscription update events audit --lock-duration 2m --max-delivery-count 5
  sessionbus --json subscription get events reds
  sessionbus receive events/subscriptions/reds --max 10`,

  token: `Usage: sessionbus token [--entity PATH] [--ttl DURATION]

Prints a shared access token ("SharedAccessSignature sr=...&sig=...&se=...&skn=...") signed
with the key of the connection string (--connection-string or
$SESSIONBUS_CONNECTION_STRING), for clients that send a token rather than take a
connection string: grpcurl and curl take it as the "authorization" header. The token has
the rights of the connection string's rule; no broker is asked. With --json: the token, its
resource, rule name and expiry.

Options:
  --entity PATH      a token for this queue, topic or subscription path only (default: the
                     connection string's EntityPath, else the whole namespace)
  --ttl DURATION     how long the token is valid (default 1h; bare numbers are seconds)

Examples:
  sessionbus token --ttl 10m
  grpcurl -plaintext -H "authorization: $(sessionbus token)" 127.0.0.1:50051 list
  curl -H "authorization: $(sessionbus token --entity orders)" -H 'content-type: application/json' \\
    -d '{"entityPath":"orders","maxMessages":10}' http://127.0.0.1:50052/sessionbus.v1.MessagingService/Peek`,

  rule: `Usage: sessionbus rule add TOPIC SUBSCRIPTION NAME FILTER
       sessionbus rule list TOPIC SUBSCRIPTION
       sessionbus rule delete TOPIC SUBSCRIPTION NAME

A subscription gets a message when any of its rules matches it (with no rules, none); a
rule applies to the messages sent after it was added.

FILTER is one of:
  --sql EXPR                 e.g. "sys.Label = 'red' AND priority > 3": comparisons, AND,
                             OR, NOT, IN, LIKE, IS NULL, EXISTS(p); sys.MessageId,
                             sys.CorrelationId, sys.SessionId, sys.ReplyTo,
                             sys.ReplyToSessionId, sys.Label, sys.To, sys.ContentType;
                             other names are application properties
  correlation flags          all given must equal the message's:
                             --correlation-id ID  --message-id ID  --label TEXT
                             --to TEXT  --reply-to TEXT  --session-id ID
                             --reply-to-session-id ID  --content-type TYPE
                             --property NAME=VALUE (repeatable; typed as in "send")
  --true                     every message
  --false                    no message

A bad SQL expression exits with code 1; stderr names the field and shows the expression
with a caret under the position of the error.

Examples:
  sessionbus rule add events reds big --sql "priority > 3"
  sessionbus rule add events audit vip --correlation-id order-7 --property tier=gold
  sessionbus rule list events reds
  sessionbus rule delete events reds '$Default'`,
};

/** A command's help, with the global options and exit codes. */
export function commandHelp(command: string): string {
  return `${COMMAND_HELP[command] ?? MAIN_HELP}\n\n${GLOBAL}\n\n${EXIT_CODES}`;
}
