/** The JSON result of a run and its printed form. */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Machine, Versions } from "./environment.js";
import type { StderrEntry } from "./processes.js";
import type { ResourceUse } from "./resources.js";
import type { Figures } from "./scenario.js";
import type { Scale, Sizes } from "./sizes.js";
import { formatNumber, formatTable } from "./table.js";
import type { TargetResult } from "./targets.js";

export interface ScenarioOutcome {
  id: string;
  title: string;
  /** Undefined when the scenario failed; then `error` says why. */
  figures?: Figures;
  resources?: ResourceUse;
  error?: string;
}

export interface Report {
  benchmark: "sessionbus";
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  scale: Scale;
  sizes: Sizes;
  machine: Machine;
  versions: Versions;
  scenarios: Record<string, unknown>;
  targets: TargetResult[];
  /** RPC errors, lost messages and the like, with how often each happened. */
  problems: string[];
  /** Every broker process of the run, in order, with how it ended and what it logged. */
  brokers: {
    pid: number;
    exitCode: number | null;
    exitSignal: string | null;
    stderr: StderrEntry[];
  }[];
}

export function scenariosJson(outcomes: ScenarioOutcome[]): Record<string, unknown> {
  return Object.fromEntries(
    outcomes.map((outcome) => [
      outcome.id,
      {
        title: outcome.title,
        ...(outcome.figures ? { figures: outcome.figures.toJSON() } : {}),
        ...(outcome.resources ? { resources: outcome.resources } : {}),
        ...(outcome.error === undefined ? {} : { error: outcome.error }),
      },
    ]),
  );
}

/** Writes `<dir>/<ISO time>.json` and `<dir>/latest.json`; returns the first path. */
export async function writeReport(dir: string, report: Report): Promise<string> {
  await mkdir(dir, { recursive: true });
  const text = `${JSON.stringify(report, null, 2)}\n`;
  // Colons are not welcome in file names everywhere: 2025-01-31T12-00-00.000Z.json.
  const path = join(dir, `${report.startedAt.replaceAll(":", "-")}.json`);
  await writeFile(path, text);
  await writeFile(join(dir, "latest.json"), text);
  return path;
}

export function formatReport(outcomes: ScenarioOutcome[], targets: TargetResult[]): string {
  const sections: string[] = [];
  for (const outcome of outcomes) {
    const rows = outcome.figures
      ? outcome.figures.list.map((figure) => [
          figure.label,
          formatNumber(figure.value),
          figure.unit,
        ])
      : [["FAILED", outcome.error ?? "", ""]];
    sections.push(`${outcome.title}\n${formatTable(["figure", "value", "unit"], rows)}`);
  }
  const used = outcomes.filter((outcome) => outcome.resources !== undefined);
  sections.push(
    `Resources per scenario (CPU seconds used during it; RSS at its end)\n${formatTable(
      [
        "scenario",
        "wall s",
        "broker CPU s",
        "nats CPU s",
        "bench CPU s",
        "other CPU s",
        "broker RSS MiB",
        "NATS msgs in",
      ],
      used.map((outcome) => {
        const r = outcome.resources as ResourceUse;
        return [
          outcome.id,
          formatNumber(r.wallSeconds),
          formatNumber(r.brokerCpuSeconds),
          formatNumber(r.natsCpuSeconds),
          formatNumber(r.benchCpuSeconds),
          formatNumber(r.otherCpuSeconds),
          formatNumber(r.brokerRssMiB),
          formatNumber(r.natsInMsgs),
        ];
      }),
    )}`,
  );
  sections.push(
    `Targets\n${formatTable(
      ["target", "measured", "met"],
      targets.map((target) => [
        target.target,
        target.measured,
        target.met === null ? "not measured" : target.met ? "MET" : "MISSED",
      ]),
    )}`,
  );
  return sections.join("\n\n");
}
