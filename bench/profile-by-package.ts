/**
 * Where a process's CPU went, by package: reads `.cpuprofile` files (`node --cpu-prof`, e.g.
 * the broker's with `npm run bench -- --profile-broker DIR`) and adds up the self time of
 * every sample by where its function lives:
 *
 *   node_modules/<package>       a dependency (the innermost node_modules of the path)
 *   sessionbus src/<folder>      our code, by folder (dist/src/… counts as src/…); gen/ts
 *   node:<module>                Node's own JavaScript (node:internal/http2/core → http2)
 *   (garbage collector), (idle), (program)   V8's own entries: GC, waiting for events,
 *                                native code V8 cannot place (compilation, the event loop)
 *
 * A native function without a script (a V8 builtin such as JSON.parse, or a C++ binding
 * such as a socket write) is charged to the nearest caller that has one, so "nats.js"
 * includes the JSON.parse it calls; the "native" column says how much of a row that is.
 *
 * Each sample counts once. V8 takes a sample only while the thread runs, and records the
 * wall time since the previous one: on a machine shared with other work, weighting by that
 * time charges the time the process waited for a core to whatever ran next (a socket write
 * had 13 % of the time and 6.5 % of the samples in one such profile). `--weight time` uses
 * the time instead. `--cpu-seconds S` (the process's CPU time, e.g. the bench's "broker CPU
 * s") adds a column that shares those seconds out by the samples that were not idle.
 *
 *   npx tsx bench/profile-by-package.ts DIR-OR-FILES… [--from S] [--to S] [--functions N]
 *     [--weight samples|time] [--cpu-seconds S]
 *
 * `--from`/`--to` keep the samples between those seconds after the profile's start;
 * `--functions N` also lists the N functions with the most self samples.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Weight of the samples of a group: counts, or µs with `--weight time`. */
interface Row {
  self: number;
  native: number;
}

const V8_ENTRIES = new Set(["(garbage collector)", "(idle)", "(program)", "(root)"]);

/** The group a script belongs to; undefined for a frame without a script. */
function groupOf(url: string): string | undefined {
  if (url === "") return undefined;
  const path = url.replace(/^file:\/\//, "");
  const modules = path.lastIndexOf("/node_modules/");
  if (modules >= 0) {
    const [first = "", second = ""] = path.slice(modules + "/node_modules/".length).split("/");
    return `node_modules/${first.startsWith("@") ? `${first}/${second}` : first}`;
  }
  if (url.startsWith("node:")) {
    const name = url.slice("node:".length).replace(/^internal\//, "");
    return `node:${name.split("/")[0]}`;
  }
  const ours = /\/(?:dist\/)?(src|gen|bench|test)\/(.*)$/.exec(path);
  if (ours) {
    const [, root = "", rest = ""] = ours;
    const parts = rest.split("/");
    // src/broker/<folder>/…: one row per broker folder; elsewhere one per top folder.
    const depth = root === "src" && parts[0] === "broker" && parts.length > 2 ? 2 : 1;
    const folder = parts.length > 1 ? parts.slice(0, depth).join("/") : "(top)";
    return `sessionbus ${root}/${folder}`;
  }
  return `other ${path}`;
}

/** Self samples (or time) by group and by function of one profile, within [fromUs, toUs). */
function aggregate(
  profile: CpuProfile,
  byTime: boolean,
  fromUs: number,
  toUs: number,
): { groups: Map<string, Row>; functions: Map<string, number>; total: number } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  // The group of each node: its own script's, or for a native frame its nearest caller's.
  const groupCache = new Map<number, { group: string; native: boolean }>();
  const placeOf = (id: number): { group: string; native: boolean } => {
    const known = groupCache.get(id);
    if (known) return known;
    const node = byId.get(id);
    const name = node?.callFrame.functionName ?? "";
    let place: { group: string; native: boolean };
    if (!node || V8_ENTRIES.has(name)) {
      place = { group: name || "(unknown)", native: false };
    } else {
      const own = groupOf(node.callFrame.url);
      const up = parent.get(id);
      if (own !== undefined) place = { group: own, native: false };
      else if (up === undefined) place = { group: "(native, no caller)", native: true };
      else place = { group: placeOf(up).group, native: true };
    }
    groupCache.set(id, place);
    return place;
  };

  const groups = new Map<string, Row>();
  const functions = new Map<string, number>();
  let at = 0;
  let total = 0;
  profile.samples.forEach((id, i) => {
    // timeDeltas[i] is the wall time since the previous sample.
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at < fromUs || at >= toUs) return;
    const weight = byTime ? delta : 1;
    const { group, native } = placeOf(id);
    const row = groups.get(group) ?? { self: 0, native: 0 };
    row.self += weight;
    if (native) row.native += weight;
    groups.set(group, row);
    const frame = byId.get(id)?.callFrame;
    const name = frame
      ? `${frame.functionName || "(anonymous)"} ${groupOf(frame.url) ?? `[native, in ${group}]`}`
      : "(unknown)";
    functions.set(name, (functions.get(name) ?? 0) + weight);
    total += weight;
  });
  return { groups, functions, total };
}

function profileFiles(paths: string[]): string[] {
  return paths.flatMap((path) =>
    statSync(path).isDirectory()
      ? readdirSync(path)
          .filter((name) => name.endsWith(".cpuprofile"))
          .sort()
          .map((name) => join(path, name))
      : [path],
  );
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      from: { type: "string" },
      to: { type: "string" },
      functions: { type: "string" },
      weight: { type: "string" },
      "cpu-seconds": { type: "string" },
    },
  });
  if (positionals.length === 0 || (values.weight ?? "samples").match(/^(samples|time)$/) === null) {
    console.error(
      "usage: npx tsx bench/profile-by-package.ts DIR-OR-FILES… [--from S] [--to S] [--functions N] [--weight samples|time] [--cpu-seconds S]",
    );
    process.exit(2);
  }
  const byTime = values.weight === "time";
  const unit = byTime ? "ms" : "samples";
  const scale = byTime ? 1e-3 : 1;
  const fromUs = Number(values.from ?? 0) * 1e6;
  const toUs = values.to === undefined ? Number.POSITIVE_INFINITY : Number(values.to) * 1e6;
  const groups = new Map<string, Row>();
  const functions = new Map<string, number>();
  let total = 0;
  for (const file of profileFiles(positionals)) {
    const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
    const part = aggregate(profile, byTime, fromUs, toUs);
    const seconds = (profile.endTime - profile.startTime) / 1e6;
    console.log(`${file}: ${seconds.toFixed(1)} s profiled, ${part.total} ${unit} in the window`);
    for (const [group, row] of part.groups) {
      const sum = groups.get(group) ?? { self: 0, native: 0 };
      sum.self += row.self;
      sum.native += row.native;
      groups.set(group, sum);
    }
    for (const [name, w] of part.functions) functions.set(name, (functions.get(name) ?? 0) + w);
    total += part.total;
  }
  const busy = total - (groups.get("(idle)")?.self ?? 0);
  const cpuSeconds =
    values["cpu-seconds"] === undefined ? undefined : Number(values["cpu-seconds"]);
  const pct = (w: number, of: number) => (of > 0 ? ((100 * w) / of).toFixed(1) : "-");
  const fixed = (w: number) => (w * scale).toFixed(0);
  console.log(`\n${fixed(total)} ${unit}, ${fixed(busy)} not idle\n`);
  const cpuHead = cpuSeconds === undefined ? "" : " CPU s |";
  console.log(`| where | self ${unit} | % of not idle | native % of the row |${cpuHead}`);
  console.log(`| --- | ---: | ---: | ---: |${cpuSeconds === undefined ? "" : " ---: |"}`);
  const rows = [...groups].sort(([, a], [, b]) => b.self - a.self);
  for (const [group, row] of rows) {
    const idle = group === "(idle)";
    const cpu =
      cpuSeconds === undefined
        ? ""
        : ` ${idle ? "" : ((cpuSeconds * row.self) / busy).toFixed(2)} |`;
    console.log(
      `| ${group} | ${fixed(row.self)} | ${idle ? "" : pct(row.self, busy)} | ${pct(row.native, row.self)} |${cpu}`,
    );
  }
  const top = Number(values.functions ?? 0);
  if (top > 0) {
    console.log(`\n| function (where) | self ${unit} | % of not idle |\n| --- | ---: | ---: |`);
    const sorted = [...functions].sort(([, a], [, b]) => b - a).slice(0, top);
    for (const [name, w] of sorted) console.log(`| ${name} | ${fixed(w)} | ${pct(w, busy)} |`);
  }
}

// Output piped into `head` ends early: that is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});
main();
