/**
 * The actions of a command over entities addressed by one name (`queue`, `topic`): create,
 * update, list, get (or show) and delete, each a call of the SDK and a printed answer.
 */
import { type Parsed, positionals, UsageError } from "./args.js";
import { type Context, EXIT, print } from "./command.js";
import { someChange } from "./property-flags.js";

export interface NamedEntityCalls<Options, Description> {
  /** The command's name, as the user types it. */
  command: "queue" | "topic";
  options(p: Parsed): Options;
  line(description: Description): string;
  create(ctx: Context, name: string, options: Options): Promise<Description>;
  update(ctx: Context, name: string, options: Options): Promise<Description>;
  list(ctx: Context): AsyncIterable<Description>;
  get(ctx: Context, name: string): Promise<Description>;
  remove(ctx: Context, name: string): Promise<void>;
  /** What `delete` prints. @default "deleted NAME" */
  deleted?: (name: string) => string;
}

export async function runNamedEntityAction<Options extends object, Description>(
  ctx: Context,
  calls: NamedEntityCalls<Options, Description>,
): Promise<number> {
  const p = ctx.parsed;
  const { command } = calls;
  const [action] = p.positionals;
  const named = () => (positionals(p, command, [action as string, "NAME"]) as [string, string])[1];
  switch (action) {
    case "create": {
      const created = await calls.create(ctx, named(), calls.options(p));
      print(ctx, created, () => `created ${calls.line(created)}`);
      return EXIT.ok;
    }
    case "update": {
      const name = named();
      const options = calls.options(p);
      someChange(options, command);
      const updated = await calls.update(ctx, name, options);
      print(ctx, updated, () => `updated ${calls.line(updated)}`);
      return EXIT.ok;
    }
    case "list": {
      positionals(p, command, ["list"]);
      const all: Description[] = [];
      for await (const found of calls.list(ctx)) all.push(found);
      print(ctx, all, () => all.map(calls.line).join("\n") || `(no ${command}s)`);
      return EXIT.ok;
    }
    case "get":
    case "show": {
      const found = await calls.get(ctx, named());
      print(ctx, found, () => JSON.stringify(found, null, 2));
      return EXIT.ok;
    }
    case "delete": {
      const name = named();
      await calls.remove(ctx, name);
      print(ctx, { deleted: name }, () => calls.deleted?.(name) ?? `deleted ${name}`);
      return EXIT.ok;
    }
    default:
      throw new UsageError(
        action === undefined
          ? `${command} needs an action: create, get, list, update or delete`
          : `unknown ${command} action "${action}"`,
        command,
      );
  }
}
