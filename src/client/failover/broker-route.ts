/**
 * Ties calls to one broker. With several broker addresses, a call goes to whichever broker
 * the client uses at the time, except calls that must reach the broker an earlier call
 * reached: a session's calls go where it was accepted, and a settlement where its message
 * was delivered (message lock tokens are known to the broker process that handed them out).
 * Such calls carry a BrokerRoute in their context values; the failover transport fills it
 * in on the first call and keeps the later ones on it.
 */
import { type ContextValues, createContextKey, createContextValues } from "@connectrpc/connect";

export class BrokerRoute {
  /** The broker's position in the address list, once a call picked it. */
  broker: number | undefined;
  /** How many connection failures that broker had seen when the route was tied to it. */
  epoch = 0;
  /** A call of this route failed because the connection to its broker failed. */
  failed = false;
  failure: unknown;

  tie(broker: number, epoch: number): void {
    this.broker = broker;
    this.epoch = epoch;
  }
}

/** The context value a call carries its route in. */
export const BROKER_ROUTE = createContextKey<BrokerRoute | undefined>(undefined, {
  description: "sessionbus broker route",
});

/** Context values sending a call along `route`. */
export function routeValues(route: BrokerRoute): ContextValues {
  return createContextValues().set(BROKER_ROUTE, route);
}

/** Why a route can no longer be used. */
export interface RouteFailure {
  /** The broker the route was tied to. */
  url: string;
  /** The failure of its connection (what the call or stream that noticed it got). */
  error: unknown;
}

/** What the SDK's receivers and settler ask of the client's brokers. */
export interface BrokerRouting {
  /** How many broker addresses the client has (at least two). */
  readonly addressCount: number;
  /**
   * Undefined while the connection the route was tied to is intact (and for a route not
   * tied yet); once that connection failed, which broker it was and how it failed.
   */
  routeFailure(route: BrokerRoute): RouteFailure | undefined;
}
