/**
 * Connection strings and shared access tokens on the client side (src/client), without a
 * broker: what a string means, errors that never show the key, and tokens checked against
 * an HMAC computed here with node:crypto and a value computed once with openssl.
 */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  createSasToken,
  formatConnectionString,
  parseConnectionString,
  SasTokenProvider,
  sasTokenExpiry,
} from "../src/client/index.js";

const KEY = "Zm9vYmFyYmF6cXV4LXNlY3JldC1rZXktdmFsdWU9PQ==";

/** A token's fields, read the way a server would. */
function fieldsOf(token: string): Record<string, string> {
  expect(token.startsWith("SharedAccessSignature ")).toBe(true);
  const fields: Record<string, string> = {};
  for (const pair of token.slice("SharedAccessSignature ".length).split("&")) {
    const at = pair.indexOf("=");
    fields[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return fields;
}

/** The signature a broker expects, computed independently of src/client/sas-token.ts. */
function expectedSignature(key: string, encodedResource: string, expiry: string): string {
  return createHmac("sha256", Buffer.from(key, "utf8"))
    .update(Buffer.from(`${encodedResource}\n${expiry}`, "utf8"))
    .digest("base64");
}

describe("parseConnectionString", () => {
  it("reads a plaintext broker's root connection string", () => {
    const parsed = parseConnectionString(
      `Endpoint=sb://127.0.0.1:50051/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${KEY};UseDevelopmentEmulator=true`,
    );
    expect(parsed).toEqual({
      endpoint: "sb://127.0.0.1:50051/",
      url: "http://127.0.0.1:50051",
      urls: ["http://127.0.0.1:50051"],
      host: "127.0.0.1",
      port: 50051,
      resourceUri: "sb://127.0.0.1:50051/",
      keyName: "RootManageSharedAccessKey",
      key: KEY,
      tls: false,
    });
  });

  it("means TLS unless UseDevelopmentEmulator=true, and port 50051 when none is written", () => {
    const parsed = parseConnectionString(
      `Endpoint=sb://broker.example/;SharedAccessKeyName=app;SharedAccessKey=${KEY}`,
    );
    expect(parsed.tls).toBe(true);
    expect(parsed.url).toBe("https://broker.example:50051");
    expect(parsed.resourceUri).toBe("sb://broker.example:50051/");
    expect(
      parseConnectionString(
        `Endpoint=sb://broker.example:7000;SharedAccessKeyName=app;SharedAccessKey=${KEY};UseDevelopmentEmulator=false`,
      ).url,
    ).toBe("https://broker.example:7000");
  });

  it("takes field names in any case, spaces around parts, a trailing ';' and unknown fields", () => {
    const parsed = parseConnectionString(
      ` endpoint = sb://localhost:6000/ ; sharedaccesskeyname=app;SHAREDACCESSKEY=${KEY}; TransportType=Amqp; usedevelopmentemulator=TRUE;`,
    );
    expect(parsed).toMatchObject({ url: "http://localhost:6000", keyName: "app", key: KEY });
  });

  it("keeps '=' inside a key (base64 padding)", () => {
    const parsed = parseConnectionString(
      "Endpoint=sb://h:1/;SharedAccessKeyName=app;SharedAccessKey=abc==",
    );
    expect(parsed.key).toBe("abc==");
  });

  it("narrows tokens to EntityPath", () => {
    const parsed = parseConnectionString(
      `Endpoint=sb://127.0.0.1:50051/;SharedAccessKeyName=orders-send;SharedAccessKey=${KEY};EntityPath=orders;UseDevelopmentEmulator=true`,
    );
    expect(parsed.entityPath).toBe("orders");
    expect(parsed.resourceUri).toBe("sb://127.0.0.1:50051/orders");
  });

  it("reads an IPv6 endpoint", () => {
    const parsed = parseConnectionString(
      `Endpoint=sb://[::1]:50051/;SharedAccessKeyName=app;SharedAccessKey=${KEY};UseDevelopmentEmulator=true`,
    );
    expect(parsed.url).toBe("http://[::1]:50051");
    expect(parsed.resourceUri).toBe("sb://[::1]:50051/");
  });

  it("lists several brokers in one Endpoint, separated by commas; tokens point at the first", () => {
    const parsed = parseConnectionString(
      `Endpoint=sb://10.0.0.1:50051/, sb://broker-b:7000/ ,sb://[::1]/;SharedAccessKeyName=app;SharedAccessKey=${KEY};UseDevelopmentEmulator=true`,
    );
    expect(parsed.urls).toEqual([
      "http://10.0.0.1:50051",
      "http://broker-b:7000",
      "http://[::1]:50051",
    ]);
    expect(parsed).toMatchObject({
      url: "http://10.0.0.1:50051",
      host: "10.0.0.1",
      port: 50051,
      resourceUri: "sb://10.0.0.1:50051/",
      tls: false,
    });
    expect(
      parseConnectionString(
        `Endpoint=sb://a/,sb://b/;SharedAccessKeyName=app;SharedAccessKey=${KEY};EntityPath=orders`,
      ),
    ).toMatchObject({
      urls: ["https://a:50051", "https://b:50051"],
      resourceUri: "sb://a:50051/orders",
    });
  });

  it("takes a ready-made token instead of a key", () => {
    const token = createSasToken({
      resourceUri: "sb://127.0.0.1:50051/",
      keyName: "app",
      key: KEY,
      expiresAtSeconds: 2_000_000_000,
    });
    const parsed = parseConnectionString(
      `Endpoint=sb://127.0.0.1:50051/;SharedAccessSignature=${token};UseDevelopmentEmulator=true`,
    );
    expect(parsed.sharedAccessSignature).toBe(token);
    expect(parsed.key).toBeUndefined();
  });

  it("round-trips what formatConnectionString writes", () => {
    for (const host of ["127.0.0.1", "::1", "broker.example"]) {
      for (const tls of [true, false]) {
        const text = formatConnectionString({ host, port: 50051, keyName: "r", key: KEY, tls });
        const parsed = parseConnectionString(text);
        expect(parsed.tls).toBe(tls);
        expect(parsed.key).toBe(KEY);
        expect(parsed.port).toBe(50051);
      }
    }
    const scoped = formatConnectionString({
      host: "127.0.0.1",
      port: 1,
      keyName: "r",
      key: KEY,
      tls: false,
      entityPath: "events",
    });
    expect(parseConnectionString(scoped).resourceUri).toBe("sb://127.0.0.1:1/events");
  });

  describe("errors say what is wrong and never show the key or token", () => {
    const secret = "S3cr3t+KeyThatMustNeverBeShown/xyz=";
    const token = `SharedAccessSignature sr=a&sig=${secret}&se=1&skn=r`;
    const cases: [string, string, RegExp][] = [
      ["empty", "", /no Endpoint/],
      ["a bare key", secret, /no Endpoint/],
      ["a bare key without padding", secret.replace("=", ""), /Part 1 .* not "Name=value"/],
      ["a key without its name", `Endpoint=sb://h:1/;${secret.replace("=", "")}`, /Part 2/],
      ["no endpoint", `SharedAccessKeyName=r;SharedAccessKey=${secret}`, /no Endpoint/],
      [
        "an endpoint that is no URL",
        `Endpoint=localhost;SharedAccessKeyName=r;SharedAccessKey=${secret}`,
        /Endpoint "localhost" is not a URL/,
      ],
      [
        "another scheme",
        `Endpoint=amqps://h/;SharedAccessKeyName=r;SharedAccessKey=${secret}`,
        /must start with sb:\/\//,
      ],
      [
        "an empty entry in an endpoint list",
        `Endpoint=sb://a:1/,,sb://b:1/;SharedAccessKeyName=r;SharedAccessKey=${secret}`,
        /empty entry/,
      ],
      [
        "an endpoint list mixing TLS and plaintext",
        `Endpoint=https://a:1/,http://b:1/;SharedAccessKeyName=r;SharedAccessKey=${secret}`,
        /mix TLS .* and plaintext/,
      ],
      [
        "a bad entry in an endpoint list",
        `Endpoint=sb://a:1/,sb://b:1/orders;SharedAccessKeyName=r;SharedAccessKey=${secret}`,
        /Endpoint "sb:\/\/b:1\/orders" has a path/,
      ],
      [
        "an endpoint with a path",
        `Endpoint=sb://h:1/orders;SharedAccessKeyName=r;SharedAccessKey=${secret}`,
        /EntityPath/,
      ],
      ["no key", "Endpoint=sb://h:1/;SharedAccessKeyName=r", /no SharedAccessKey /],
      ["no key name", `Endpoint=sb://h:1/;SharedAccessKey=${secret}`, /no SharedAccessKeyName /],
      [
        "an empty key",
        "Endpoint=sb://h:1/;SharedAccessKeyName=r;SharedAccessKey=",
        /no SharedAccessKey/,
      ],
      [
        "a key and a token",
        `Endpoint=sb://h:1/;SharedAccessKeyName=r;SharedAccessKey=${secret};SharedAccessSignature=${token}`,
        /both/,
      ],
      [
        "a key given twice",
        `Endpoint=sb://h:1/;SharedAccessKeyName=r;SharedAccessKey=${secret};SharedAccessKey=${secret}x`,
        /SharedAccessKey twice/,
      ],
      [
        "a bad emulator flag",
        `Endpoint=sb://h:1/;SharedAccessKeyName=r;SharedAccessKey=${secret};UseDevelopmentEmulator=yes`,
        /UseDevelopmentEmulator is "yes"/,
      ],
    ];
    for (const [what, text, message] of cases) {
      it(what, () => {
        let thrown: unknown;
        try {
          parseConnectionString(text);
        } catch (error) {
          thrown = error;
        }
        expect(thrown).toBeInstanceOf(Error);
        const shown = String((thrown as Error).message);
        expect(shown).toMatch(message);
        expect(shown).not.toContain(secret);
        expect(shown).not.toContain(secret.slice(0, 10));
      });
    }
  });
});

describe("createSasToken", () => {
  it("signs the url-encoded resource and the expiry with the key's UTF-8 bytes", () => {
    const key = "k3y+with/slash=and-ünïcode";
    const token = createSasToken({
      resourceUri: "sb://127.0.0.1:50051/",
      keyName: "RootManageSharedAccessKey",
      key,
      expiresAtSeconds: 1_700_000_000,
    });
    const fields = fieldsOf(token);
    expect(Object.keys(fields)).toEqual(["sr", "sig", "se", "skn"]);
    expect(fields.sr).toBe("sb%3A%2F%2F127.0.0.1%3A50051%2F");
    expect(fields.se).toBe("1700000000");
    expect(fields.skn).toBe("RootManageSharedAccessKey");
    const sig = decodeURIComponent(fields.sig as string);
    expect(sig).toBe(expectedSignature(key, fields.sr as string, "1700000000"));
    // Computed once with: printf 'sb%%3A%%2F%%2F127.0.0.1%%3A50051%%2F\n1700000000' |
    //   openssl dgst -sha256 -hmac 'k3y+with/slash=and-ünïcode' -binary | base64
    expect(sig).toBe("gFrB8nyOVB9vQagiOoj9nPerg9VZC7G4igqCcQe3eTA=");
    // '+', '/' and '=' of the base64 signature are escaped, so the token reads back as a query.
    expect(fields.sig).not.toMatch(/[+/=]/);
  });

  it("points at an entity below the namespace", () => {
    const token = createSasToken({
      resourceUri: "sb://127.0.0.1:50051/events/subscriptions/audit",
      keyName: "listen",
      key: KEY,
      expiresAtSeconds: 1_700_000_000.9,
    });
    const fields = fieldsOf(token);
    expect(decodeURIComponent(fields.sr as string)).toBe(
      "sb://127.0.0.1:50051/events/subscriptions/audit",
    );
    expect(fields.se).toBe("1700000000");
    expect(decodeURIComponent(fields.sig as string)).toBe(
      expectedSignature(KEY, fields.sr as string, "1700000000"),
    );
    expect(sasTokenExpiry(token)).toBe(1_700_000_000);
  });

  it("refuses an empty key, an empty rule name and an expiry that is no time", () => {
    const base = { resourceUri: "sb://h:1/", keyName: "r", key: KEY, expiresAtSeconds: 1 };
    expect(() => createSasToken({ ...base, key: "" })).toThrow(/needs a key/);
    expect(() => createSasToken({ ...base, keyName: "" })).toThrow(/rule's name/);
    expect(() => createSasToken({ ...base, expiresAtSeconds: Number.NaN })).toThrow(/expiry/);
  });
});

describe("SasTokenProvider", () => {
  const options = { resourceUri: "sb://h:1/", keyName: "r", key: KEY };
  const start = 1_700_000_000_000;

  it("keeps a token for most of its hour and mints the next one five minutes before expiry", () => {
    const provider = new SasTokenProvider(options);
    const first = provider.current(start);
    expect(sasTokenExpiry(first)).toBe(start / 1000 + 3600);
    expect(provider.current(start + 3_000_000)).toBe(first);
    expect(provider.current(start + 3_294_000)).toBe(first);
    const second = provider.current(start + 3_301_000);
    expect(second).not.toBe(first);
    expect(sasTokenExpiry(second)).toBe(start / 1000 + 3301 + 3600);
  });

  it("keeps short-lived tokens for half their lifetime instead of minting on every call", () => {
    const provider = new SasTokenProvider({ ...options, lifetimeSeconds: 60 });
    const first = provider.current(start);
    expect(provider.current(start + 29_000)).toBe(first);
    expect(provider.current(start + 31_000)).not.toBe(first);
  });
});
