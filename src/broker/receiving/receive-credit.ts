/**
 * The credit of one receive stream: how many delivered messages may be unsettled at once.
 * Settling (or a lock running out) gives credit back and wakes the stream.
 */
export class ReceiveCredit {
  private outstanding = 0;
  private wake: (() => void) | undefined;

  constructor(private readonly limit: number) {}

  get available(): number {
    return this.limit - this.outstanding;
  }

  take(): void {
    this.outstanding++;
  }

  give(): void {
    this.outstanding--;
    this.wake?.();
  }

  /** Resolves once some credit is free, or the signal aborts. */
  async whenAvailable(signal: AbortSignal): Promise<void> {
    while (this.available <= 0 && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        signal.addEventListener("abort", done);
      });
    }
  }
}
