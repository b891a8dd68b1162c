import { useCallback, useEffect, useState } from "preact/hooks";
import { errorText } from "./api.js";

/**
 * Loads `load()` now, again every `everyMs` (0: only when asked) and whenever `reload` is
 * called; keeps the last value while a reload runs.
 */
export function usePoll<T>(
  load: () => Promise<T>,
  deps: unknown[],
  everyMs = 0,
): { value: T | undefined; error: string | undefined; reload: () => void } {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    let live = true;
    load().then(
      (loaded) => {
        if (!live) return;
        setValue(loaded);
        setError(undefined);
      },
      (failed: unknown) => live && setError(errorText(failed)),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  useEffect(() => {
    if (everyMs <= 0) return;
    const timer = setInterval(reload, everyMs);
    return () => clearInterval(timer);
  }, [everyMs, reload]);
  return { value, error, reload };
}
