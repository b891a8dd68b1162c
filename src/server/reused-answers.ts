import type { EntityRuntime } from "../broker/entities/entity-streams.js";
import type { EntityRecord } from "../store/entity-record.js";

/**
 * Answers a handler gives again unchanged, and their encodings. GetQueue of a queue nobody
 * changes answers the same each time (its figures come from the store's FiguresCache), and
 * building that answer and encoding it with protobuf-es added about 40 µs of CPU to a call
 * that otherwise costs about 70 (docs/performance.md, "The RPC floor"). The answer is built
 * once per record and figures, and the gRPC port encodes it once. Reused answers are never
 * modified.
 */
const encodings = new WeakMap<object, Buffer | undefined>();

/** The encoding of `answer`: made once and kept when the answer is a reused one. */
export function encodingOf(answer: unknown, encode: (answer: unknown) => Buffer): Buffer {
  const kept = encodings.get(answer as object);
  if (kept !== undefined) return kept;
  const bytes = encode(answer);
  if (encodings.has(answer as object)) encodings.set(answer as object, bytes);
  return bytes;
}

/** The last answer built for each entity record, while the figures it shows are the same. */
export class AnswersByRecord<T extends object> {
  private readonly last = new WeakMap<EntityRecord, { runtime: EntityRuntime; answer: T }>();

  /** The answer for `view`: the last one when record and figures are unchanged. */
  get(view: { record: EntityRecord; runtime: EntityRuntime }, build: () => T): T {
    const known = this.last.get(view.record);
    if (known && sameFigures(known.runtime, view.runtime)) return known.answer;
    const answer = build();
    encodings.set(answer, undefined); // its encoding is kept once made
    this.last.set(view.record, { runtime: view.runtime, answer });
    return answer;
  }
}

function sameFigures(a: EntityRuntime, b: EntityRuntime): boolean {
  return (Object.keys(a) as (keyof EntityRuntime)[]).every((key) => a[key] === b[key]);
}
