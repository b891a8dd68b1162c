import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { formatConnectionString } from "../client/connection-string.js";
import type { AuthorizationRuleStore } from "../store/authorization-rule-store.js";
import { ensurePrivateDir } from "../store/private-dir.js";
import { generateKey, validateKey } from "./authorization-rule-admin.js";

/** The namespace rule a new broker makes, named as in Service Bus. */
export const ROOT_RULE_NAME = "RootManageSharedAccessKey";
/** Where the first start writes the root rule's connection string, below the data dir. */
export const CONNECTION_STRING_FILE = "connection-string";

export interface RootRuleOptions {
  /** SESSIONBUS_ROOT_KEY: the root rule's primary key, set at every start. */
  rootKey?: string;
  dataDir: string;
  /** Where clients reach the gRPC port, for the connection string. */
  host: string;
  port: number;
  tls: boolean;
}

/**
 * Makes sure someone can manage the namespace. With SESSIONBUS_ROOT_KEY, the root rule gets
 * that primary key (made or changed). Otherwise, on a store without any namespace rule, the
 * root rule is made with random keys and its connection string written to a file only the
 * broker's user can read. Returns the line to log.
 */
export async function ensureRootRule(
  rules: AuthorizationRuleStore,
  options: RootRuleOptions,
): Promise<string> {
  if (options.rootKey !== undefined) {
    validateKey(options.rootKey, "SESSIONBUS_ROOT_KEY");
    await setRootKey(rules, options.rootKey);
    return `authorization on; rule ${ROOT_RULE_NAME} uses the key in SESSIONBUS_ROOT_KEY`;
  }
  const file = path.resolve(options.dataDir, CONNECTION_STRING_FILE);
  if (rules.list("").length > 0) {
    return existsSync(file)
      ? `authorization on; the ${ROOT_RULE_NAME} connection string is in ${file}`
      : "authorization on; clients need a token of one of the namespace's authorization rules";
  }
  const now = Date.now();
  const rule = {
    name: ROOT_RULE_NAME,
    rights: ["Manage" as const, "Send" as const, "Listen" as const],
    primaryKey: generateKey(),
    secondaryKey: generateKey(),
    createdMs: now,
    updatedMs: now,
  };
  if (!(await rules.create("", rule))) {
    return "authorization on; another broker made the namespace's first rule a moment ago";
  }
  await ensurePrivateDir(path.dirname(file));
  const text = formatConnectionString({
    host: clientHost(options.host),
    port: options.port,
    keyName: ROOT_RULE_NAME,
    key: rule.primaryKey,
    tls: options.tls,
  });
  await writeFile(file, `${text}\n`, { mode: 0o600 });
  return `authorization on; first start: the ${ROOT_RULE_NAME} connection string was written to ${file} (pass it to clients: --connection-string, SESSIONBUS_CONNECTION_STRING)`;
}

async function setRootKey(rules: AuthorizationRuleStore, key: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const now = Date.now();
    try {
      // Inside the retry too: on a new cluster the bucket another broker has just made may
      // not answer a read yet (a timeout, seen with two brokers starting at once).
      const found = await rules.find("", ROOT_RULE_NAME);
      if (!found) {
        const made = await rules.create("", {
          name: ROOT_RULE_NAME,
          rights: ["Manage", "Send", "Listen"],
          primaryKey: key,
          secondaryKey: generateKey(),
          createdMs: now,
          updatedMs: now,
        });
        if (made) return;
        continue;
      }
      if (found.rule.primaryKey === key && found.rule.rights.includes("Manage")) return;
      await rules.update(
        "",
        { ...found.rule, primaryKey: key, rights: ["Manage", "Send", "Listen"], updatedMs: now },
        found.revision,
      );
      return;
    } catch (error) {
      // Several brokers starting at once: read again and retry.
      if (attempt >= 5) throw error;
    }
  }
}

/** A wildcard listen address is not one clients can dial: they get this machine's loopback. */
function clientHost(host: string): string {
  return host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host;
}
