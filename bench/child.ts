// Child processes the benchmark owns (the agent, the reference proxies): spawned through tsx (or as plain
// JavaScript when given a build), optionally pinned with taskset from the first instruction, ready when
// they print one `READY {json}` line.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { tasksetBinary } from './proc.ts';

export interface Child<T> {
  readonly pid: number;
  readonly info: T;
  readonly process: ChildProcess;
  /** SIGTERM (so --cpu-prof profiles get written), SIGKILL after `graceMs`; resolves on exit. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export interface ChildOptions {
  /** CPUs to pin to (taskset -c), e.g. "0". */
  cpus?: string;
  /** Options for node itself (e.g. --cpu-prof). */
  nodeArgs?: string[];
  timeoutMs?: number;
}

/** The build of a bench script in dist/ (`npm run build`) when it is there and not older than the source, else the source. */
export function builtOrSource(script: URL): URL {
  const built = new URL(`../dist/bench/${script.pathname.split('/').pop()?.replace(/\.ts$/, '.js') ?? ''}`, import.meta.url);
  return existsSync(built) && statSync(built).mtimeMs >= statSync(script).mtimeMs ? built : script;
}

export async function startChild<T>(script: URL, arg: unknown, options: ChildOptions = {}): Promise<Child<T>> {
  const loader = script.pathname.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const nodeArgs = [...(options.nodeArgs ?? []), ...loader, script.pathname, JSON.stringify(arg)];
  const taskset = options.cpus === undefined ? undefined : tasksetBinary();
  const child = taskset
    ? spawn(taskset, ['-c', options.cpus ?? '', process.execPath, ...nodeArgs], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, nodeArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let stdout = '';
  let ready: ((info: T) => void) | undefined;
  const readyInfo = new Promise<T>((resolve) => { ready = resolve; });
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    const line = /^READY (.*)$/m.exec(stdout);
    if (line?.[1] && ready) {
      ready(JSON.parse(line[1]) as T);
      ready = undefined;
    }
  });
  child.stderr?.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-4000); });
  const exited = once(child, 'exit').then(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const failed = new Promise<never>((_, reject) => {
    void exited.then(() => reject(new Error(`${script.pathname} exited before it was ready:\n${output}`)));
    timer = setTimeout(() => reject(new Error(`${script.pathname} not ready after ${options.timeoutMs ?? 30_000} ms:\n${output}`)), options.timeoutMs ?? 30_000);
  });
  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5000) => (stopping ??= (async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(kill);
    }
  })());
  try {
    const info = await Promise.race([readyInfo, failed]);
    return { pid: child.pid ?? -1, info, process: child, stop };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
