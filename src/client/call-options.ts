/** Options every call takes. */
export interface CallOptions {
  /** Cancels the call; it then rejects with `signal.reason` (an AbortError by default). */
  signal?: AbortSignal | undefined;
  /** Deadline of the call. @default the client's `callTimeoutMs` */
  timeoutMs?: number | undefined;
}
