/**
 * A bidirectional stream whose frames are answered one to one, in order (SendStream,
 * SettleStream), used like a unary method: frame() writes a request at once and resolves
 * with its answer, so many frames are in flight on one stream. The stream is opened on the
 * first frame and, with `idleCloseMs`, half-closed when no frame has been waiting that
 * long; the next frame opens a new one. With `maxAgeMs`, a frame never goes to a stream
 * opened longer ago than that: the old one is half-closed (its frames still get their
 * answers) and the frame opens a new one, with a fresh token (the broker checks each frame
 * against the token the stream was opened with). A stream that fails fails the frames
 * waiting on it.
 */

/** Requests written by frame() and read by the stream: a queue that can be waited on. */
class FrameQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private closed = false;

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }
}

interface Waiter<Res> {
  resolve(answer: Res): void;
  reject(error: unknown): void;
}

/** One opened stream: its frames, the answers it owes, and its end. */
class Link<Req, Res> {
  readonly frames = new FrameQueue<Req>();
  readonly waiting: Waiter<Res>[] = [];
  closing = false;
  readonly openedAtMs = Date.now();
  readonly ended: Promise<void>;

  constructor(open: (frames: AsyncIterable<Req>) => AsyncIterable<Res>, onAnswer: () => void) {
    this.ended = (async () => {
      let failure: unknown = new Error("The stream ended before answering the frame.");
      try {
        for await (const answer of open(this.frames)) {
          this.waiting.shift()?.resolve(answer);
          onAnswer();
        }
      } catch (error) {
        failure = error;
      }
      this.closing = true;
      for (const waiter of this.waiting.splice(0)) waiter.reject(failure);
    })();
  }
}

export class FramePipe<Req, Res> {
  private link: Link<Req, Res> | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly open: (frames: AsyncIterable<Req>) => AsyncIterable<Res>,
    private readonly idleCloseMs = 0,
    private readonly maxAgeMs = Number.POSITIVE_INFINITY,
  ) {}

  frame(request: Req): Promise<Res> {
    clearTimeout(this.idleTimer);
    if (this.link && !this.link.closing && Date.now() - this.link.openedAtMs >= this.maxAgeMs) {
      this.link.closing = true;
      this.link.frames.close();
    }
    if (!this.link || this.link.closing) {
      const link: Link<Req, Res> = new Link(this.open, () => this.answered(link));
      this.link = link;
    }
    const link = this.link;
    return new Promise<Res>((resolve, reject) => {
      link.waiting.push({ resolve, reject });
      link.frames.push(request);
    });
  }

  /** Half-closes the stream; resolves once every frame is answered and the stream ended. */
  async close(): Promise<void> {
    clearTimeout(this.idleTimer);
    const link = this.link;
    this.link = undefined;
    if (!link) return;
    link.closing = true;
    link.frames.close();
    await link.ended;
  }

  private answered(link: Link<Req, Res>): void {
    if (this.idleCloseMs <= 0 || link !== this.link || link.waiting.length > 0) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.link !== link || link.waiting.length > 0) return;
      void this.close();
    }, this.idleCloseMs).unref();
  }
}
