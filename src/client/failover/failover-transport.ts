/**
 * A Transport over several brokers that share one store. Calls go to one broker, the first
 * of the list to begin with, for as long as its connection holds. When a call finds the
 * connection failed (refused, reset, closed under it: see connection-failure.ts), the client
 * moves on to the next address, and the call is repeated there if it cannot have reached the
 * failed broker, or if repeating it is safe (retry-policy.ts). Each address is tried at most
 * once per call, within the call's deadline. Calls tied to a broker by a BrokerRoute never
 * move: they fail, and their owner (a session receiver, a settlement) decides.
 *
 * Streams are never reopened here: a plain receiver reopens its own stream, and a session
 * held through a failed connection is lost (see session-receiver.ts).
 */
import type {
  DescMessage,
  DescMethodStreaming,
  DescMethodUnary,
  MessageInitShape,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import {
  BROKER_ROUTE,
  type BrokerRoute,
  type BrokerRouting,
  type RouteFailure,
} from "./broker-route.js";
import { type ConnectionFailure, connectionFailure } from "./connection-failure.js";
import { retriesAfterBrokenConnection } from "./retry-policy.js";

/** One broker address and the transport to it. */
export interface BrokerLink {
  url: string;
  transport: Transport;
}

/** The client moved to another broker. */
export interface FailoverEvent {
  /** The broker whose connection failed. */
  from: string;
  /** The broker calls go to from now on. */
  to: string;
  /** How the connection failed. */
  error: unknown;
}

type HeaderInit = Parameters<Transport["unary"]>[3];

export class FailoverTransport implements Transport, BrokerRouting {
  private active = 0;
  /** Per broker: connection failures seen so far; a route tied to an older count is lost. */
  private readonly epochs: number[];
  private readonly lastFailure: unknown[];

  constructor(
    private readonly links: readonly BrokerLink[],
    private readonly onFailover: ((event: FailoverEvent) => void) | undefined,
  ) {
    if (links.length < 2) throw new Error("FailoverTransport needs at least two brokers");
    this.epochs = links.map(() => 0);
    this.lastFailure = links.map(() => undefined);
  }

  /** The broker calls go to now. */
  get activeUrl(): string {
    return this.link(this.active).url;
  }

  get addressCount(): number {
    return this.links.length;
  }

  routeFailure(route: BrokerRoute): RouteFailure | undefined {
    const { broker } = route;
    if (broker === undefined) return undefined;
    if (!route.failed && this.epochs[broker] === route.epoch) return undefined;
    return {
      url: this.link(broker).url,
      error: route.failed ? route.failure : this.lastFailure[broker],
    };
  }

  async unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeaderInit,
    input: MessageInitShape<I>,
    contextValues?: ContextValues,
  ): Promise<UnaryResponse<I, O>> {
    const route = contextValues?.get(BROKER_ROUTE);
    if (route?.broker !== undefined) {
      const { broker, epoch } = route;
      this.throwIfLost(route);
      try {
        return await this.link(broker).transport.unary(
          method,
          signal,
          timeoutMs,
          header,
          input,
          contextValues,
        );
      } catch (error) {
        this.observe(error, signal, broker, epoch, route);
        throw error;
      }
    }

    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    const tried = new Set<number>();
    for (;;) {
      const broker = this.active;
      const epoch = this.epochs[broker] ?? 0;
      tried.add(broker);
      const left = deadline === undefined || tried.size === 1 ? timeoutMs : deadline - Date.now();
      try {
        const response = await this.link(broker).transport.unary(
          method,
          signal,
          left,
          header,
          input,
          contextValues,
        );
        route?.tie(broker, epoch);
        return response;
      } catch (error) {
        const failure = this.observe(error, signal, broker, epoch, undefined);
        if (failure === undefined || tried.has(this.active)) throw error;
        if (failure === "broken" && !retriesAfterBrokenConnection(method, input)) throw error;
        if (deadline !== undefined && deadline - Date.now() <= 0) throw error;
      }
    }
  }

  async stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodStreaming<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeaderInit,
    input: AsyncIterable<MessageInitShape<I>>,
    contextValues?: ContextValues,
  ): Promise<StreamResponse<I, O>> {
    const route = contextValues?.get(BROKER_ROUTE);
    let broker: number;
    let epoch: number;
    if (route?.broker !== undefined) {
      this.throwIfLost(route);
      broker = route.broker;
      epoch = route.epoch;
    } else {
      broker = this.active;
      epoch = this.epochs[broker] ?? 0;
      // Tied before the stream opens: whatever it delivers belongs to this broker.
      route?.tie(broker, epoch);
    }
    try {
      const response = await this.link(broker).transport.stream(
        method,
        signal,
        timeoutMs,
        header,
        input,
        contextValues,
      );
      return {
        ...response,
        message: this.watched(response.message, signal, broker, epoch, route),
      };
    } catch (error) {
      this.observe(error, signal, broker, epoch, route);
      throw error;
    }
  }

  /** The stream's responses; a connection failure under it is noted before it is thrown. */
  private async *watched<T>(
    responses: AsyncIterable<T>,
    signal: AbortSignal | undefined,
    broker: number,
    epoch: number,
    route: BrokerRoute | undefined,
  ): AsyncGenerator<T> {
    try {
      yield* responses;
    } catch (error) {
      this.observe(error, signal, broker, epoch, route);
      throw error;
    }
  }

  /**
   * Classifies a failure; a connection failure marks the route failed and, unless a call
   * already reported this connection's failure, moves the client on from that broker.
   */
  private observe(
    error: unknown,
    signal: AbortSignal | undefined,
    broker: number,
    epoch: number,
    route: BrokerRoute | undefined,
  ): ConnectionFailure | undefined {
    const failure = connectionFailure(error, signal);
    if (failure === undefined) return undefined;
    if (route && !route.failed) {
      route.failed = true;
      route.failure = error;
    }
    if (this.epochs[broker] !== epoch) return failure;
    this.epochs[broker] = epoch + 1;
    this.lastFailure[broker] = error;
    if (this.active === broker) {
      this.active = (broker + 1) % this.links.length;
      try {
        this.onFailover?.({
          from: this.link(broker).url,
          to: this.link(this.active).url,
          error,
        });
      } catch {
        // the listener's own failure has nowhere to go
      }
    }
    return failure;
  }

  private throwIfLost(route: BrokerRoute): void {
    const lost = this.routeFailure(route);
    if (lost === undefined) return;
    throw new ConnectError(
      `The connection to the broker at ${lost.url} failed; what was received or locked through it stays with it until its locks expire.`,
      Code.Unavailable,
      undefined,
      undefined,
      lost.error,
    );
  }

  private link(index: number): BrokerLink {
    const link = this.links[index];
    if (link === undefined) throw new Error(`no broker at position ${index}`);
    return link;
  }
}
