/** How many settled sequence numbers a session handle remembers at most. */
const CAPACITY = 10_000;

/**
 * The stream sequences of the messages settled (removed) through one session handle, the
 * most recent CAPACITY of them, so that a redelivery of one is dropped instead of handed
 * out again. Only with replicas (SESSIONBUS_REPLICAS > 1): a removal goes through the
 * stream's log and is answered once a majority has it, but a replica applies it a moment
 * later, and a consumer whose leader moved to a replica still behind (during a rolling
 * restart) delivered completed messages of its session again, 100 ms after their
 * completions were answered (18 in one run of test/cluster-rolling-restart.chaos-test.ts). With one
 * replica the ack removes the only copy and nothing comes again.
 */
export class RemovedSequences {
  private readonly sequences = new Set<number>();

  add(sequence: number): void {
    this.sequences.add(sequence);
    if (this.sequences.size > CAPACITY) {
      // A Set iterates in insertion order: the first is the oldest.
      const oldest = this.sequences.values().next().value;
      if (oldest !== undefined) this.sequences.delete(oldest);
    }
  }

  has(sequence: number): boolean {
    return this.sequences.has(sequence);
  }
}
