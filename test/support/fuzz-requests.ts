/**
 * Random and mutated requests for the fuzz test: a message of any request type, filled
 * field by field from its protobuf descriptor with values chosen to hurt (empty and huge
 * strings, emoji, int64 extremes, invalid durations, unknown enum values, wrong oneofs),
 * then, for some, its bytes mutated so that they no longer decode.
 */
import { create, type DescField, type DescMessage, ScalarType, toBinary } from "@bufbuild/protobuf";

/** A seeded PRNG (mulberry32), so a failing run can be repeated with its seed. */
export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (below: number) => Math.floor(next() * below);
  return {
    next,
    int,
    chance: (p) => next() < p,
    pick: <T>(items: readonly T[]) => items[int(items.length)] as T,
  };
}

export interface Random {
  /** In [0, 1). */
  next(): number;
  /** In [0, below). */
  int(below: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
}

/** Names of real entities and sessions, so that some requests reach deep into the broker. */
export interface FuzzTargets {
  entityPaths: readonly string[];
  sessionIds: readonly string[];
}

const INT64_EXTREMES = [
  0n,
  1n,
  -1n,
  2n ** 31n - 1n,
  -(2n ** 31n),
  2n ** 53n,
  2n ** 63n - 1n,
  -(2n ** 63n),
];
const INT32_EXTREMES = [0, 1, -1, 2, 100, 250, 251, 1001, 2 ** 31 - 1, -(2 ** 31)];

/** Lengths at and around the limits of some string fields, by field name. */
const EDGE_LENGTHS: [RegExp, number[]][] = [
  [/dead_letter_(reason|description)/, [4096, 4097, 100_000]],
  [/lock_token/, [36, 128, 129, 100_000]],
  [/page_token/, [1024, 1025, 100_000]],
  [/^(correlation_id|to|subject|content_type|expression)$/, [1024, 1025, 100_000]],
  [/^(message_id|session_id|reply_to_session_id|instance_id)$/, [128, 129]],
  [/^reply_to$/, [260, 261]],
];

function hostileString(random: Random, targets: FuzzTargets, fieldName: string): string {
  const named = /path|name|topic|reply_to$|subscription/.test(fieldName)
    ? targets.entityPaths
    : /session/.test(fieldName)
      ? targets.sessionIds
      : [];
  if (named.length > 0 && random.chance(0.5)) return random.pick(named);
  // Strings with a limit of their own get values at its edges (see request limits).
  const edges = EDGE_LENGTHS.find(([pattern]) => pattern.test(fieldName))?.[1];
  if (edges && random.chance(0.3)) {
    return (random.chance(0.5) ? "😀" : "d").repeat(random.pick(edges));
  }
  switch (random.int(12)) {
    case 0:
      return "";
    case 1:
      return "x".repeat(random.pick([127, 128, 129, 260, 261, 4097, 100_000]));
    case 2:
      return "😀".repeat(random.pick([64, 128, 129, 2000]));
    case 3:
      return random.pick([
        "a//b",
        "/a",
        "a/",
        "$deadletterqueue",
        "a/$deadletterqueue",
        "*",
        ">",
        ".",
        "a.b",
        "sbt.x.>",
      ]);
    case 4:
      return random.pick(["%", "_", "%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%b", "[", "\\"]);
    case 5:
      return crypto.randomUUID();
    case 6:
      return String.fromCharCode(
        ...Array.from({ length: random.int(40) }, () => random.int(0xffff)),
      );
    case 7:
      return "\u0000\n\r\t";
    case 8:
      return random.pick([
        "1 = 1",
        "p LIKE '%a%a%a%a%a%a%a%a%a%a%b'",
        "sys.Label = 'x' AND",
        "EXISTS(",
        "x IN ()",
        "NOT NOT NOT x",
      ]);
    default:
      return `f${random.int(1000)}`;
  }
}

function scalarValue(
  random: Random,
  field: DescField,
  scalar: ScalarType,
  targets: FuzzTargets,
): unknown {
  switch (scalar) {
    case ScalarType.STRING:
      return hostileString(random, targets, field.name);
    case ScalarType.BYTES:
      return random.chance(0.1)
        ? new Uint8Array(random.pick([1024, 1025, 64 * 1024, 256 * 1024 + 1, 600_000]))
        : crypto.getRandomValues(new Uint8Array(random.int(64)));
    case ScalarType.BOOL:
      return random.chance(0.5);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return random.pick([
        0,
        -0,
        1.5,
        -1e308,
        1e308,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        Number.NEGATIVE_INFINITY,
      ]);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return random.pick(INT64_EXTREMES);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return random.pick([0n, 1n, 2n ** 53n, 2n ** 64n - 1n]);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return random.pick([0, 1, 2 ** 32 - 1]);
    default:
      return random.pick(INT32_EXTREMES);
  }
}

function messageInit(
  random: Random,
  schema: DescMessage,
  targets: FuzzTargets,
  depth: number,
): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  // Well-known types get values at their edges.
  if (
    schema.typeName === "google.protobuf.Duration" ||
    schema.typeName === "google.protobuf.Timestamp"
  ) {
    return {
      seconds: random.pick([...INT64_EXTREMES, 1n, 5n, 60n, 315_576_000_001n, 253_402_300_800n]),
      nanos: random.pick([0, 1, -1, 999_999_999, 1_000_000_000, -(2 ** 31)]),
    };
  }
  for (const oneof of schema.oneofs) {
    if (random.chance(0.3)) continue;
    const field = random.pick(oneof.fields);
    init[oneof.localName] = {
      case: field.localName,
      value: fieldValue(random, field, targets, depth),
    };
  }
  for (const field of schema.fields) {
    if (field.oneof || random.chance(0.3)) continue;
    if (field.fieldKind === "list") {
      // Long lists (at or over a limit) hold small items, the same one or distinct ones
      // (distinct lock tokens and sequence numbers get past duplicate checks).
      const long = random.chance(0.05) ? random.pick([250, 251, 1001, 4500, 4501, 20_000]) : 0;
      init[field.localName] =
        long > 0
          ? random.chance(0.5)
            ? new Array(long).fill(smallItem(field))
            : Array.from({ length: long }, (_, i) => distinctItem(field, i))
          : Array.from({ length: random.int(4) }, () => listItem(random, field, targets, depth));
    } else if (field.fieldKind === "map") {
      // Sometimes more entries than a correlation filter may compare (64), then small ones.
      const many = random.chance(0.05);
      const entries = many ? random.pick([64, 65, 1000]) : random.int(4);
      init[field.localName] = Object.fromEntries(
        Array.from({ length: entries }, (_, i) => [
          many ? `p${i}` : hostileString(random, targets, "key"),
          many ? smallMapValue(field) : mapValue(random, field, targets, depth),
        ]),
      );
    } else {
      init[field.localName] = fieldValue(random, field, targets, depth);
    }
  }
  return init;
}

/** A random value of a map field. */
function mapValue(random: Random, field: DescField, targets: FuzzTargets, depth: number) {
  if (field.fieldKind !== "map") return undefined;
  return field.mapKind === "message"
    ? messageInit(random, field.message, targets, depth + 1)
    : field.mapKind === "enum"
      ? random.int(5)
      : scalarValue(random, field, field.scalar, targets);
}

/** A small value of a map field (a property value holds a bool). */
function smallMapValue(field: DescField): unknown {
  if (field.fieldKind !== "map") return undefined;
  if (field.mapKind === "message") {
    return field.message.typeName === "sessionbus.v1.PropertyValue"
      ? { value: { case: "boolValue", value: true } }
      : {};
  }
  return field.mapKind === "enum" ? 1 : field.scalar === ScalarType.STRING ? "v" : 1;
}

function fieldValue(
  random: Random,
  field: DescField,
  targets: FuzzTargets,
  depth: number,
): unknown {
  switch (field.fieldKind) {
    case "scalar":
      return scalarValue(random, field, field.scalar, targets);
    case "enum":
      return random.pick([0, 1, 2, 3, 4, 5, 99, -1]);
    case "message":
      return depth > 4 ? {} : messageInit(random, field.message, targets, depth + 1);
    default:
      return undefined;
  }
}

function smallItem(field: DescField): unknown {
  if (field.fieldKind !== "list") return undefined;
  if (field.listKind === "message") return {};
  if (field.listKind === "enum") return 1;
  switch (field.scalar) {
    case ScalarType.STRING:
      return "s";
    case ScalarType.BYTES:
      return new Uint8Array(1);
    case ScalarType.BOOL:
      return true;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return 1n;
    default:
      return 1;
  }
}

/** The i-th of a list of distinct small items (scalars only; messages stay empty). */
function distinctItem(field: DescField, i: number): unknown {
  if (field.fieldKind !== "list" || field.listKind !== "scalar") return smallItem(field);
  switch (field.scalar) {
    case ScalarType.STRING:
      return i % 2 === 0 ? crypto.randomUUID() : `t${i}`;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return BigInt(i + 1);
    default:
      return smallItem(field);
  }
}

function listItem(random: Random, field: DescField, targets: FuzzTargets, depth: number): unknown {
  if (field.fieldKind !== "list") return undefined;
  if (field.listKind === "message") {
    return depth > 4 ? {} : messageInit(random, field.message, targets, depth + 1);
  }
  if (field.listKind === "enum") return random.pick([0, 1, 2, 99]);
  return scalarValue(random, field, field.scalar, targets);
}

/** Bytes of a random request of `schema`; about one in four mutated past decoding. */
export function fuzzRequest(random: Random, schema: DescMessage, targets: FuzzTargets): Buffer {
  const bytes = Buffer.from(
    toBinary(schema, create(schema, messageInit(random, schema, targets, 0))),
  );
  if (!random.chance(0.25)) return bytes;
  return mutate(random, bytes);
}

function mutate(random: Random, bytes: Buffer): Buffer {
  switch (random.int(4)) {
    case 0:
      return bytes.subarray(0, random.int(bytes.length + 1));
    case 1: {
      const copy = Buffer.from(bytes);
      for (let i = 0; i < 1 + random.int(8) && copy.length > 0; i++) {
        copy[random.int(copy.length)] = random.int(256);
      }
      return copy;
    }
    case 2:
      return Buffer.concat([bytes, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f])]);
    default:
      return Buffer.from(crypto.getRandomValues(new Uint8Array(random.int(32))));
  }
}
