/**
 * Loaded into the broker child (`node --expose-gc --import <this>`), never into a real
 * deployment: on SIGUSR2 it runs a full garbage collection and prints the process's memory
 * figures as one stdout line, so the benchmark can tell live heap from garbage in the RSS.
 */
/** processes.ts looks for lines that start with this. */
const MEMORY_LINE_PREFIX = "bench-memory ";

/** @type {(() => void) | undefined} */
const collect = globalThis.gc;

process.on("SIGUSR2", () => {
  collect?.();
  const usage = process.memoryUsage();
  console.log(
    `${MEMORY_LINE_PREFIX}${JSON.stringify({ ...usage, collected: collect !== undefined })}`,
  );
});
