/** CPU time and memory of the three processes, sampled around each scenario. */
import { performance } from "node:perf_hooks";
import { cpuSeconds, machineCpuSeconds, monitorJson, residentBytes } from "./processes.js";
import { round } from "./stats.js";

export interface ResourceSnapshot {
  at: number;
  brokerCpu: number;
  natsCpu: number;
  benchCpu: number;
  machineCpu: number;
  /** Messages the nats-server received from and sent to clients (/varz). */
  natsIn: number;
  natsOut: number;
}

export interface ResourceUse {
  wallSeconds: number;
  brokerCpuSeconds: number;
  natsCpuSeconds: number;
  benchCpuSeconds: number;
  /** CPU used by everything else on the machine meanwhile (other work disturbs figures). */
  otherCpuSeconds: number;
  brokerRssMiB: number;
  natsRssMiB: number;
  /** NATS protocol messages clients published (requests, acks, pulls) and received. */
  natsInMsgs: number;
  natsOutMsgs: number;
}

const MIB = 1024 * 1024;

export interface Watched {
  brokerPid: number;
  natsPid: number;
  monitorUrl: string;
}

export async function snapshot({
  brokerPid,
  natsPid,
  monitorUrl,
}: Watched): Promise<ResourceSnapshot> {
  const usage = process.cpuUsage();
  const varz = await monitorJson(monitorUrl, "/varz").catch(() => ({}) as Record<string, unknown>);
  return {
    at: performance.now(),
    brokerCpu: await cpuSeconds(brokerPid).catch(() => Number.NaN),
    natsCpu: await cpuSeconds(natsPid).catch(() => Number.NaN),
    benchCpu: (usage.user + usage.system) / 1e6,
    machineCpu: await machineCpuSeconds().catch(() => Number.NaN),
    natsIn: Number(varz.in_msgs ?? Number.NaN),
    natsOut: Number(varz.out_msgs ?? Number.NaN),
  };
}

/** What was used between `before` and now; RSS as it is now. */
export async function usedSince(before: ResourceSnapshot, watched: Watched): Promise<ResourceUse> {
  const { brokerPid, natsPid } = watched;
  const after = await snapshot(watched);
  return {
    wallSeconds: round((after.at - before.at) / 1000, 2),
    brokerCpuSeconds: round(after.brokerCpu - before.brokerCpu, 2),
    natsCpuSeconds: round(after.natsCpu - before.natsCpu, 2),
    benchCpuSeconds: round(after.benchCpu - before.benchCpu, 2),
    otherCpuSeconds: round(
      Math.max(
        0,
        after.machineCpu -
          before.machineCpu -
          (after.brokerCpu - before.brokerCpu) -
          (after.natsCpu - before.natsCpu) -
          (after.benchCpu - before.benchCpu),
      ),
      2,
    ),
    brokerRssMiB: round((await residentBytes(brokerPid).catch(() => Number.NaN)) / MIB, 1),
    natsRssMiB: round((await residentBytes(natsPid).catch(() => Number.NaN)) / MIB, 1),
    natsInMsgs: after.natsIn - before.natsIn,
    natsOutMsgs: after.natsOut - before.natsOut,
  };
}

/** CPU seconds used so far by named processes, and by this one (the client) as `client`. */
export type CpuReading = Record<string, number>;

export async function readCpu(pids: Record<string, number>): Promise<CpuReading> {
  const usage = process.cpuUsage();
  const reading: CpuReading = { client: (usage.user + usage.system) / 1e6 };
  for (const [name, pid] of Object.entries(pids)) {
    reading[name] = await cpuSeconds(pid).catch(() => Number.NaN);
  }
  return reading;
}

/** CPU milliseconds per message of each process between two readings, and their `total`. */
export function cpuMsPerMessage(
  before: CpuReading,
  after: CpuReading,
  messages: number,
): CpuReading {
  const perMessage: CpuReading = {};
  let total = 0;
  for (const name of Object.keys(before)) {
    const ms = (((after[name] ?? Number.NaN) - (before[name] as number)) * 1000) / messages;
    perMessage[name] = round(ms, 4);
    total += ms;
  }
  perMessage.total = round(total, 4);
  return perMessage;
}
