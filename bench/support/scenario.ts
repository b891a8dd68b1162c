/** What a scenario gets to work with and what it hands back. */
import { setMaxListeners } from "node:events";
import type { BrokerMemory } from "./processes.js";
import type { Sizes } from "./sizes.js";

export interface ScenarioContext {
  sizes: Sizes;
  natsUrl: string;
  brokerUrl: string;
  brokerPid: number;
  natsPid: number;
  /** The broker's memory after a full garbage collection in it. */
  brokerMemoryAfterGc(): Promise<BrokerMemory>;
  /** Aborted when the scenario runs past its time limit. */
  signal: AbortSignal;
  /** Progress line on stderr. */
  log(line: string): void;
  /** Something went wrong (an RPC error, a lost message): counted and reported. */
  problem(line: string): void;
}

export interface Figure {
  /** Key in the JSON result, camelCase with its unit, e.g. "p99Ms". */
  key: string;
  label: string;
  value: number;
  unit: string;
}

/** The figures of one scenario, in the order they are printed. */
export class Figures {
  readonly list: Figure[] = [];

  add(key: string, value: number, unit: string, label: string): this {
    this.list.push({ key, label, value, unit });
    return this;
  }

  /** The value of `key`; NaN when the scenario did not produce it. */
  get(key: string): number {
    return this.list.find((figure) => figure.key === key)?.value ?? Number.NaN;
  }

  toJSON(): Record<string, number | null> {
    return Object.fromEntries(
      this.list.map((figure) => [figure.key, Number.isFinite(figure.value) ? figure.value : null]),
    );
  }
}

export interface Scenario {
  /** Key of the scenario in the JSON result and for --only. */
  id: string;
  title: string;
  /** Runs on a newly started broker (memory figures must not inherit earlier garbage). */
  freshBroker?: boolean;
  /** Upper bound of the scenario's run time at these sizes. */
  timeoutMs(sizes: Sizes): number;
  run(context: ScenarioContext): Promise<Figures>;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * AbortSignal.any, for a signal that many calls listen to at once (each RPC adds a
 * listener): without the raised limit Node warns of a leak past 10 listeners.
 */
export function anySignal(...signals: AbortSignal[]): AbortSignal {
  const signal = AbortSignal.any(signals);
  setMaxListeners(0, signal);
  return signal;
}
