/**
 * Checks a session run's delivery guarantees: within each session every message is
 * delivered in the order it was sent, and every message is completed exactly once. Each
 * body carries its session's number and its place in that session (see `sequencedBody`),
 * so the check needs nothing from the system under test but the bodies it delivers.
 */
import { BODY_BYTES } from "./client.js";

/** Bytes 0–7 hold the send stamp (stampedBody); the session and the sequence follow. */
const SESSION_OFFSET = 8;
const SEQUENCE_OFFSET = 12;
/** At most this many examples of each kind of violation are named in a problem line. */
const EXAMPLES = 3;

/** A 1 KiB body with the send stamp, the session number and the message's place in it. */
export function sequencedBody(stampMs: number, session: number, sequence: number): Uint8Array {
  const body = new Uint8Array(BODY_BYTES);
  const view = new DataView(body.buffer);
  view.setFloat64(0, stampMs);
  view.setUint32(SESSION_OFFSET, session);
  view.setUint32(SEQUENCE_OFFSET, sequence);
  return body;
}

export interface Sequenced {
  session: number;
  sequence: number;
}

/** The session and sequence of a body; undefined when the body is too short to hold them. */
export function sequenceOf(body: Uint8Array | undefined): Sequenced | undefined {
  if (body === undefined || body.length < SEQUENCE_OFFSET + 4) return undefined;
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  return { session: view.getUint32(SESSION_OFFSET), sequence: view.getUint32(SEQUENCE_OFFSET) };
}

/** A violation of one kind: how often, and the first few in words. */
class Tally {
  count = 0;
  readonly examples: string[] = [];

  add(example: () => string): void {
    this.count++;
    if (this.examples.length < EXAMPLES) this.examples.push(example());
  }

  line(what: string): string | undefined {
    if (this.count === 0) return undefined;
    return `${this.count} ${what} (e.g. ${this.examples.join("; ")})`;
  }
}

export class SessionOrderCheck {
  /** Per session: the sequence number the next delivery must carry. */
  private readonly nextDelivery: number[];
  /** Per message (session × messagesPerSession + sequence): how often it was completed. */
  private readonly completions: Uint16Array;
  private readonly outOfOrder = new Tally();
  private readonly deliveredLate = new Tally();
  private readonly completedAgain = new Tally();
  private readonly unknown = new Tally();

  constructor(
    readonly sessions: number,
    readonly messagesPerSession: number,
    /** How a session is named in problem lines. */
    private readonly sessionName: (session: number) => string = (session) => `#${session}`,
  ) {
    this.nextDelivery = new Array<number>(sessions).fill(0);
    this.completions = new Uint16Array(sessions * messagesPerSession);
  }

  /** A message reached its receiver; call in the order the receiver saw them. */
  delivered(message: Sequenced | undefined): void {
    if (!this.known(message)) return;
    const { session, sequence } = message;
    const expected = this.nextDelivery[session] as number;
    const name = this.sessionName(session);
    if (sequence < expected) {
      this.deliveredLate.add(() => `${name} message ${sequence} after ${expected - 1}`);
      return;
    }
    if (sequence > expected) {
      this.outOfOrder.add(() => `${name} message ${sequence} when ${expected} was due`);
    }
    this.nextDelivery[session] = sequence + 1;
  }

  /** The receiver's completion (settle, ack) of a message was accepted. */
  completed(message: Sequenced | undefined): void {
    if (!this.known(message)) return;
    const index = message.session * this.messagesPerSession + message.sequence;
    const count = (this.completions[index] as number) + 1;
    this.completions[index] = count;
    if (count === 2) {
      this.completedAgain.add(
        () => `${this.sessionName(message.session)} message ${message.sequence}`,
      );
    }
  }

  /** Messages completed exactly once. */
  completedOnce(): number {
    let once = 0;
    for (const count of this.completions) if (count === 1) once++;
    return once;
  }

  /** One line per kind of violation; empty when every guarantee held. */
  violations(): string[] {
    const missing = new Tally();
    this.completions.forEach((count, index) => {
      if (count > 0) return;
      const session = Math.floor(index / this.messagesPerSession);
      missing.add(() => `${this.sessionName(session)} message ${index % this.messagesPerSession}`);
    });
    return [
      this.outOfOrder.line("deliveries out of send order within their session"),
      this.deliveredLate.line(
        "deliveries of a message after a later one of its session (late or repeated)",
      ),
      missing.line("messages never completed"),
      this.completedAgain.line("messages completed more than once"),
      this.unknown.line("deliveries whose body names no message that was sent"),
    ].filter((line) => line !== undefined);
  }

  private known(message: Sequenced | undefined): message is Sequenced {
    if (
      message !== undefined &&
      message.session < this.sessions &&
      message.sequence < this.messagesPerSession
    ) {
      return true;
    }
    this.unknown.add(() =>
      message === undefined
        ? "a short body"
        : `session ${message.session} message ${message.sequence}`,
    );
    return false;
  }
}
