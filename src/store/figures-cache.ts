import { performance } from "node:perf_hooks";

/**
 * How long figures read from JetStream (message counts, bytes) are used again for the same
 * stream: the most that writes through another broker process, or copies JetStream makes
 * into a subscription's stream, can take to show in them.
 */
export const FIGURES_MAX_AGE_MS = 1000;

interface Entry<T> {
  figures: Promise<T>;
  /** When the read started (performance.now()): its answer is at least that fresh. */
  readAt: number;
  /** Writes counted on the topic the stream copies from, when the read started. */
  topicWrites: number;
}

/**
 * Figures of streams (counts, bytes), read from JetStream at most once per stream in
 * FIGURES_MAX_AGE_MS, so that admin reads of an entity nobody writes to (GetQueue,
 * ListQueues, GetTopic…) cost no request; a read in flight is shared by the callers that
 * come meanwhile. The store drops a stream's entry when this process has written to it
 * (`changed`: publish, ack, delete) and the entries of a topic's subscriptions when it has
 * published to the topic (`topicChanged`), so figures read after a write through this
 * process returned always include it.
 */
export class FiguresCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  /** Publishes to each topic stream, counted (a subscription's entry notes the count). */
  private readonly topicWrites = new Map<string, number>();

  constructor(private readonly read: (stream: string) => Promise<T>) {}

  /** The figures of `stream`; `sourcedFrom` names the topic stream it copies from. */
  get(stream: string, sourcedFrom?: string): Promise<T> {
    const now = performance.now();
    const topicWrites = sourcedFrom === undefined ? 0 : (this.topicWrites.get(sourcedFrom) ?? 0);
    const known = this.entries.get(stream);
    if (known && now - known.readAt < FIGURES_MAX_AGE_MS && known.topicWrites === topicWrites) {
      return known.figures;
    }
    const entry: Entry<T> = { figures: this.read(stream), readAt: now, topicWrites };
    this.entries.set(stream, entry);
    entry.figures.catch(() => {
      if (this.entries.get(stream) === entry) this.entries.delete(stream);
    });
    return entry.figures;
  }

  /** This process wrote to (or removed) `stream`: the next read asks JetStream. */
  changed(stream: string): void {
    this.entries.delete(stream);
  }

  /** This process published to the topic stream `topicStream`. */
  topicChanged(topicStream: string): void {
    this.topicWrites.set(topicStream, (this.topicWrites.get(topicStream) ?? 0) + 1);
  }
}
