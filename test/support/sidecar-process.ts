// Runs real agentmesh processes for the tests and benchmarks: a sidecar (the CLI, as users run it) from
// a config object, waiting for its --ready-file, stopped with the signal the caller chooses.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { waitFor } from './wait.ts';

/** The folder holding package.json, whether this runs from the sources or from their build in dist/. */
export const ROOT = packageRoot(fileURLToPath(new URL('.', import.meta.url)));
export const CLI = join(ROOT, 'bin/agentmesh.mjs');

export interface SidecarProcess extends AsyncDisposable {
  readonly outbound: string;
  readonly inbound: string;
  readonly admin: string;
  readonly process: ChildProcess;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** Sends a signal and waits for exit; resolves with the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `agentmesh sidecar` with `config` (listen ports default to 0 on 127.0.0.1). */
export async function startSidecarProcess(config: Record<string, unknown>, options: { timeoutMs?: number; readyFile?: string; nodeArgs?: string[]; launcher?: readonly string[] } = {}): Promise<SidecarProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-sidecar-'));
  const configPath = join(dir, 'sidecar.yaml');
  const readyFile = options.readyFile ?? join(dir, 'ready.json');
  const full = {
    listen: { outbound: '127.0.0.1:0', inbound: '127.0.0.1:0', admin: '127.0.0.1:0' },
    log: { level: 'warn' },
    ...config,
  };
  writeFileSync(configPath, stringify(full));
  // nodeArgs: options for node itself, e.g. --cpu-prof (which NODE_OPTIONS does not accept on Node 20).
  // launcher: a command prefix, e.g. ['ip', 'netns', 'exec', ns] to run the sidecar on another test host.
  const [program, ...argv] = [...(options.launcher ?? []), process.execPath, ...(options.nodeArgs ?? []), CLI, 'sidecar', '--config', configPath, '--ready-file', readyFile];
  const child = spawn(program ?? process.execPath, argv, {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((code) => { exitCode = code; });
  let ready: { outbound: string; inbound: string; admin: string };
  // A sidecar that exits during start-up fails this at once, with everything it printed ('close': stdio flushed).
  const failed = new Promise<never>((_, reject) => child.once('close', (code) => reject(new Error(`sidecar exited with ${code}:\n${output}`))));
  failed.catch(() => undefined);
  try {
    ready = await Promise.race([failed, waitFor('sidecar ready file', () => {
      try { return JSON.parse(readFileSync(readyFile, 'utf8')) as typeof ready; } catch { return undefined; }
    }, options.timeoutMs ?? 30_000)]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (exitCode === undefined) child.kill(signal);
    return exited;
  };
  return {
    ...ready, process: child, output: () => output, stop,
    [Symbol.asyncDispose]: async () => { await stop('SIGKILL'); },
  };
}

/** Runs the CLI to completion and returns its exit code and output. */
export async function runCli(args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env },
    timeout: options.timeoutMs ?? 60_000,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { code, stdout, stderr };
}


function packageRoot(dir: string): string {
  if (existsSync(join(dir, 'package.json'))) return dir;
  const parent = dirname(dir);
  if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
  return packageRoot(parent);
}
