/**
 * Lock tokens that were settled, remembered until their lock would have expired, so that a
 * second settle is told apart from a made-up token. Each entry keeps only what that check
 * needs, never the message: settled tokens pile up at the delivery rate (a minute's worth
 * with the default lock duration), and holding the messages made every young-generation
 * collection copy them. One timer forgets the entries a second at a time, at most two
 * seconds late.
 */
export class SettledTokens<T> {
  private readonly entries = new Map<string, T>();
  /** Tokens by the second (epoch seconds, rounded up) after which they are forgotten. */
  private readonly forgetBySecond = new Map<number, string[]>();
  private timer: NodeJS.Timeout | undefined;

  remember(token: string, entry: T, untilMs: number): void {
    this.entries.set(token, entry);
    const second = Math.ceil(untilMs / 1000);
    const due = this.forgetBySecond.get(second);
    if (due) due.push(token);
    else this.forgetBySecond.set(second, [token]);
    if (!this.timer) {
      this.timer = setInterval(() => this.forgetDue(), 1000);
      this.timer.unref();
    }
  }

  get(token: string): T | undefined {
    return this.entries.get(token);
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.entries.clear();
    this.forgetBySecond.clear();
  }

  private forgetDue(): void {
    const now = Date.now() / 1000;
    for (const [second, tokens] of this.forgetBySecond) {
      if (second > now) continue;
      for (const token of tokens) this.entries.delete(token);
      this.forgetBySecond.delete(second);
    }
    if (this.entries.size === 0) this.clear();
  }
}
