/**
 * The CLI's entry: finds the command, answers --help and --version, and hands the command
 * to execute.ts. Only this file, the command table and the help are loaded before that: the
 * SDK, its RPC libraries and (for `serve`) the broker come in on use, so that --help answers
 * in a fraction of the time a command with a broker call takes.
 */
import { readFileSync } from "node:fs";
import { findCommand, flag, type Parsed, parseCommand, UsageError } from "./args.js";
import { type Command, EXIT, type Io, usageFailure } from "./command.js";
import { commandHelp, MAIN_HELP } from "./help.js";
import { MESSAGE_COMMANDS } from "./message-commands.js";
import { QUEUE_COMMAND } from "./queue-commands.js";
import { SERVE_COMMAND } from "./serve-command.js";
import { TOKEN_COMMAND } from "./token-command.js";
import { TOPIC_COMMANDS } from "./topic-commands.js";

const COMMANDS: Record<string, Command> = {
  serve: SERVE_COMMAND,
  queue: QUEUE_COMMAND,
  ...TOPIC_COMMANDS,
  token: TOKEN_COMMAND,
  ...MESSAGE_COMMANDS,
};

const processIo: Io = {
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  env: process.env,
};

/** Runs one command line; resolves with the exit code. */
export async function runCli(argv: readonly string[], io: Io = processIo): Promise<number> {
  let spec: Command;
  let parsed: Parsed;
  try {
    const { command, rest } = findCommand(argv);
    if (command === undefined) {
      const options = parseCommand("sessionbus", rest, {});
      if (flag(options, "version")) {
        io.stdout(version());
        return EXIT.ok;
      }
      if (flag(options, "help")) {
        io.stdout(MAIN_HELP);
        return EXIT.ok;
      }
      throw new UsageError("no command given");
    }
    const found = COMMANDS[command];
    if (!found) throw new UsageError(`unknown command "${command}"`);
    spec = found;
    parsed = parseCommand(command, rest, spec.options);
    if (flag(parsed, "help")) {
      io.stdout(commandHelp(command));
      return EXIT.ok;
    }
    if (flag(parsed, "version")) {
      io.stdout(version());
      return EXIT.ok;
    }
  } catch (error) {
    if (error instanceof UsageError) return usageFailure(error, io);
    throw error;
  }
  const { execute } = await import("./execute.js");
  return execute(spec, parsed, io);
}

/** The version in the project's package.json, from src/cli/ or from its compiled dist/src/cli/. */
function version(): string {
  for (const up of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "sessionbus" && pkg.version !== undefined) return pkg.version;
    } catch {
      // Not there: try the next level up.
    }
  }
  return "unknown";
}
