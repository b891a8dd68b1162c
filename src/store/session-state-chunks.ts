import type { KV } from "@nats-io/kv";

/** One NATS message carries at most 1 MiB by default; state goes in chunks well below. */
const CHUNK_BYTES = 512 * 1024;

/**
 * Chunk requests in flight at once. Each request has its own timeout in nats.js: sending
 * all 200 chunks of a 100 MiB state together made the last replies queue behind ~100 MiB
 * on one connection and time out on a busy machine. Eight keep the pipe full (4 MiB ahead).
 */
const CHUNKS_IN_FLIGHT = 8;

/**
 * Session state bytes, split into KV entries `<streamId>.<session>.<version>.<i>`. A new
 * state is written under a new version before the session record points at it, so a
 * reader never sees half of a state, and a failed write leaves the old one in place.
 */
export class SessionStateChunks {
  constructor(private readonly kv: KV) {}

  /** Stores the bytes; returns how many chunks they took. */
  async put(streamId: string, token: string, version: string, data: Uint8Array): Promise<number> {
    const chunks = Math.max(1, Math.ceil(data.length / CHUNK_BYTES));
    await forEachChunk(chunks, (i) =>
      this.kv.put(
        key(streamId, token, version, i),
        data.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES),
      ),
    );
    return chunks;
  }

  async get(
    streamId: string,
    token: string,
    version: string,
    chunks: number,
    size: number,
  ): Promise<Uint8Array> {
    const state = new Uint8Array(size);
    await forEachChunk(chunks, async (i) => {
      const part = await this.kv.get(key(streamId, token, version, i));
      if (part?.operation !== "PUT")
        throw new Error(`session state chunk missing (version ${version}, chunk ${i})`);
      state.set(part.value, i * CHUNK_BYTES);
    });
    return state;
  }

  async remove(streamId: string, token: string, version: string, chunks: number): Promise<void> {
    await forEachChunk(chunks, (i) => this.kv.purge(key(streamId, token, version, i)));
  }
}

function key(streamId: string, token: string, version: string, index: number): string {
  return `${streamId}.${token}.${version}.${index}`;
}

/** Runs `work` for chunks 0…count-1 with at most CHUNKS_IN_FLIGHT running; fails on the first failure. */
async function forEachChunk(
  count: number,
  work: (index: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(CHUNKS_IN_FLIGHT, count) }, lane));
}
