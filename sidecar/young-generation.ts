// Holds V8's young generation of this process at a few MB. V8 doubles the new space (two semi-spaces)
// whenever enough objects survive a scavenge, up to 2 × 16 MB; a sidecar reaches that during start-up and
// under load, and keeps it: about 20 MB of an idle sidecar's RSS and 25 MB of its peak (BENCHMARKS.md).
// `node --max-semi-space-size` would cap it, but a package's bin cannot pass node options (npx, a global
// install, `node bin/agentmesh.mjs`) without a second process. V8 reads its growth factor at every
// scavenge, so after each garbage collection this sets it to 1 (do not grow) once the new space has
// reached the cap and back to 2 (V8's default) below it. A scavenge burst inside one synchronous task
// can grow it one step past the cap before the observer runs; V8 shrinks it again when allocation slows.
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** The semi-space size (MB) a sidecar holds; the new space is two of them. */
export const SEMI_SPACE_MB = 4;

/** V8 takes `-` and `_` alike in flag names. */
const OWN_FLAGS = /(^|\s)--(max[-_]semi[-_]space[-_]size|min[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor)\b/;

/** True when node was started with its own young-generation flags (command line or NODE_OPTIONS): those win. */
export function youngGenerationConfigured(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return execArgv.some((a) => OWN_FLAGS.test(a)) || OWN_FLAGS.test(nodeOptions ?? '');
}

/** The new space's current size in bytes (both semi-spaces). */
export function newSpaceBytes(): number {
  for (const space of getHeapSpaceStatistics()) if (space.space_name === 'new_space') return space.space_size;
  return 0;
}

/**
 * Starts holding the new space at `semiSpaceMb` per semi-space; returns the stop function. The process
 * entry (bin/agentmesh.mjs) calls it only when youngGenerationConfigured() is false.
 */
export function holdYoungGeneration(semiSpaceMb = SEMI_SPACE_MB): () => void {
  const cap = 2 * semiSpaceMb * 2 ** 20;
  let growing = true;
  const check = (): void => {
    const grow = newSpaceBytes() < cap;
    if (grow === growing) return;
    growing = grow;
    setFlagsFromString(`--semi-space-growth-factor=${grow ? 2 : 1}`);
  };
  const observer = new PerformanceObserver(check);
  observer.observe({ entryTypes: ['gc'] });
  check();
  return () => {
    observer.disconnect();
    if (!growing) setFlagsFromString('--semi-space-growth-factor=2');
  };
}
