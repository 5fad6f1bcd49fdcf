// Another process's CPU time and memory, read from /proc (Linux), and core pinning with taskset.
// Readers return undefined instead of throwing when the process is gone or /proc is absent.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

let ticks: number | undefined;

/** Clock ticks per second for /proc/<pid>/stat (CLK_TCK; 100 on Linux almost everywhere). */
export function clockTicks(): number {
  if (ticks === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(out.stdout?.trim());
    ticks = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return ticks;
}

/** utime + stime of `pid` in seconds (all threads), from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return undefined;
  }
}

export interface Memory {
  /** Resident set size now (VmRSS), MB. */
  rssMb: number;
  /** Peak resident set size (VmHWM) since start or the last resetPeak(), MB. */
  peakMb: number;
}

export function memory(pid: number): Memory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** Resets VmHWM to the current RSS (writes 5 to /proc/<pid>/clear_refs); false when not permitted. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** The taskset binary, when installed. */
export function tasksetBinary(): string | undefined {
  for (const path of ['/usr/bin/taskset', '/bin/taskset', '/usr/local/bin/taskset']) if (existsSync(path)) return path;
  return undefined;
}

/** Pins every thread of `pid` to `cpus` (e.g. "0" or "1"); false when taskset is missing or refuses. */
export function pin(pid: number, cpus: string): boolean {
  const taskset = tasksetBinary();
  if (!taskset) return false;
  return spawnSync(taskset, ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' }).status === 0;
}

/** The CPUs this process may run on, as taskset prints them ("0,1"), or undefined. */
export function allowedCpus(): string | undefined {
  try {
    return /^Cpus_allowed_list:\s+(.+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]?.trim();
  } catch {
    return undefined;
  }
}

/** CPU seconds the whole machine has spent busy (all CPUs; /proc/stat user+nice+system+irq+softirq+steal). */
export function machineBusySeconds(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
    return (user + nice + system + irq + softirq + steal) / clockTicks();
  } catch {
    return Number.NaN;
  }
}

/** Direct children of `parent` (from /proc/<pid>/stat's ppid field). */
export function childPids(parent: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

/**
 * Starts counting CPU the machine spends outside this process and its children (other users' work,
 * a CI run, …): the noise a benchmark cannot remove, only report. stop() gives the share of all CPUs.
 */
export function foreignLoad(cpuCount: number): () => { foreignPct: number; seconds: number } {
  const ours = () => cpuOf([process.pid, ...childPids(process.pid)]);
  const t0 = performance.now();
  const busy0 = machineBusySeconds();
  const ours0 = ours();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const foreign = machineBusySeconds() - busy0 - (ours() - ours0);
    return { foreignPct: Math.max(0, (foreign / (seconds * cpuCount)) * 100), seconds };
  };
}

function cpuOf(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0);
}
