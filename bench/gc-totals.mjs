// Preloaded into a sidecar by bench/node-options-ab.ts (`node --import bench/gc-totals.mjs`): totals of
// the process's garbage collections (pause ms and count, scavenges and full collections apart) and its
// CPU time, printed to stderr as one `GCTOTALS {json}` line on SIGUSR2.
import { PerformanceObserver, constants } from 'node:perf_hooks';

const totals = { scavengeMs: 0, scavenges: 0, fullMs: 0, fulls: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) { totals.scavengeMs += entry.duration; totals.scavenges++; }
    else { totals.fullMs += entry.duration; totals.fulls++; }
  }
}).observe({ entryTypes: ['gc'] });
process.on('SIGUSR2', () => process.stderr.write(`GCTOTALS ${JSON.stringify(totals)}\n`));
