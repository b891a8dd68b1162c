import type { KV } from "@nats-io/kv";

/** One NATS message carries at most 1 MiB by default; state goes in chunks well below. */
const CHUNK_BYTES = 512 * 1024;

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
    await Promise.all(
      Array.from({ length: chunks }, (_, i) =>
        this.kv.put(
          key(streamId, token, version, i),
          data.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES),
        ),
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
    const parts = await Promise.all(
      Array.from({ length: chunks }, (_, i) => this.kv.get(key(streamId, token, version, i))),
    );
    const state = new Uint8Array(size);
    let offset = 0;
    for (const part of parts) {
      if (part?.operation !== "PUT")
        throw new Error(`session state chunk missing (version ${version})`);
      state.set(part.value, offset);
      offset += part.value.length;
    }
    return state;
  }

  async remove(streamId: string, token: string, version: string, chunks: number): Promise<void> {
    await Promise.all(
      Array.from({ length: chunks }, (_, i) => this.kv.purge(key(streamId, token, version, i))),
    );
  }
}

function key(streamId: string, token: string, version: string, index: number): string {
  return `${streamId}.${token}.${version}.${index}`;
}
