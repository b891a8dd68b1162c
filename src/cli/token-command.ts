/**
 * `sessionbus token`: a shared access token minted from the connection string's key, for
 * clients that take a token rather than a connection string (grpcurl -H, curl -H).
 */
import { createSasToken, TOKEN_LIFETIME_SECONDS } from "../client/sas-token.js";
import { parseDuration, positionals, str, UsageError } from "./args.js";
import { type Command, EXIT, print } from "./command.js";
import { CONNECTION_STRING_ENV } from "./credentials.js";

export const TOKEN_COMMAND: Command = {
  options: {
    entity: { type: "string" },
    ttl: { type: "string" },
  },
  async run(ctx) {
    const p = ctx.parsed;
    positionals(p, "token", []);
    const connection = ctx.connection();
    if (connection === undefined) {
      throw new UsageError(
        `token needs a connection string with a key: pass --connection-string or set ${CONNECTION_STRING_ENV}`,
        "token",
      );
    }
    const entity = str(p, "entity");
    const rawTtl = str(p, "ttl");
    const { keyName, key } = connection;
    if (keyName === undefined || key === undefined) {
      if (entity !== undefined || rawTtl !== undefined) {
        throw new UsageError(
          "the connection string carries a token, not a key: it cannot mint one for another --entity or --ttl",
          "token",
        );
      }
      const token = connection.sharedAccessSignature ?? "";
      print(ctx, { token }, () => token);
      return EXIT.ok;
    }
    const ttlMs =
      rawTtl === undefined
        ? TOKEN_LIFETIME_SECONDS * 1000
        : parseDuration(rawTtl, "--ttl", "token");
    if (ttlMs < 1000) throw new UsageError("--ttl must be at least 1s", "token");
    const path = entity === undefined ? connection.entityPath : entity.replace(/^\/+|\/+$/g, "");
    const resourceUri = `sb://${connection.host}:${connection.port}/${path ?? ""}`;
    const expiresAtSeconds = Math.floor(Date.now() / 1000) + Math.floor(ttlMs / 1000);
    const token = createSasToken({ resourceUri, keyName, key, expiresAtSeconds });
    print(
      ctx,
      {
        token,
        resourceUri,
        keyName,
        expiresAt: new Date(expiresAtSeconds * 1000).toISOString(),
      },
      () => token,
    );
    return EXIT.ok;
  },
};
