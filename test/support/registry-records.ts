// Shared pieces of the registry tests: record builders, unique names, reverse-order cleanup, waiting
// on a view's change events (no polling, no sleeps) and a child process running registry-child.ts. Test-only.
import { spawn, type ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AgentRecord, AnnouncedRecord, RegistryView } from '../../registry/index.ts';
import type { ChildOptions } from './registry-child.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('./registry-child.ts', import.meta.url));

let counter = 0;
/** A name no other test (or concurrent test file) uses: prefix, pid, counter. */
export function unique(prefix: string): string {
  return `${prefix}-${process.pid}-${counter++}`;
}

export function agentRecord(name: string, instance = 'i1', extra: { skills?: { id: string; tags?: string[] }[]; labels?: Record<string, string> } = {}): AnnouncedRecord {
  return {
    kind: 'agent', name, instance, identity: `spiffe://mesh.test/agent/${name}`, endpoint: 'https://127.0.0.1:9',
    labels: extra.labels ?? {}, card: { name, skills: extra.skills ?? [] },
  };
}

export function mcpRecord(name: string, instance = 'i1'): AnnouncedRecord {
  return {
    kind: 'mcp', name, instance, identity: `spiffe://mesh.test/mcp/${name}`, endpoint: 'https://127.0.0.1:9', labels: {},
    tools: [{ name: 'search', description: 'finds things', inputSchema: { type: 'object' } }],
  };
}

/** A full, valid stored record (for writing raw values that bypass the announcer). */
export function storedAgentRecord(name: string, instance: string, heartbeatAt = new Date()): AgentRecord {
  const at = heartbeatAt.toISOString();
  return { ...(agentRecord(name, instance) as Omit<AgentRecord, 'startedAt' | 'heartbeatAt'>), startedAt: at, heartbeatAt: at };
}

/**
 * Registers cleanups that run in reverse order when the test ends, like `await using` (node:test runs
 * t.after hooks first-in, first-out, which would stop a server before the clients that use it).
 */
export function cleanup(t: TestContext): (fn: () => unknown) => void {
  const stack: (() => unknown)[] = [];
  t.after(async () => {
    const errors: unknown[] = [];
    for (const fn of stack.reverse()) {
      try { await fn(); } catch (err) { errors.push(err); }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  });
  return (fn) => { stack.push(fn); };
}

/** Resolves with the first truthy value of `check`, evaluated now and after each change the view reports. */
export function until<T>(view: RegistryView, what: string, check: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const finish = (fn: () => void): void => { off(); clearTimeout(timer); fn(); };
    const test = (): void => {
      const value = check();
      if (value !== undefined && value !== false) finish(() => resolve(value));
    };
    const off = view.onChange(test);
    const timer = setTimeout(() => finish(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))), timeoutMs);
    test();
  });
}

export interface Child {
  readonly process: ChildProcess;
  /** Resolves when the child prints `line` (rejects if it exits first or after `timeoutMs`). */
  line(line: string, timeoutMs?: number): Promise<void>;
  /** Sends `signal` and resolves once the process has exited. */
  stop(signal: NodeJS.Signals): Promise<void>;
}

export function startChild(options: ChildOptions): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(options)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; for (const w of waiters) w(); });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exited = new Promise<void>((resolve) => child.once('exit', () => { for (const w of waiters) w(); resolve(); }));
  return {
    process: child,
    line(line, timeoutMs = 15_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`child did not print '${line}' within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
        const check = (): void => {
          if (out.split('\n').includes(line)) done();
          else if (child.exitCode !== null || child.signalCode !== null) done(new Error(`child exited before printing '${line}'; stderr: ${err}`));
        };
        const done = (error?: Error): void => {
          waiters.delete(check);
          clearTimeout(timer);
          if (error) reject(error); else resolve();
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
