// The processes the demo runs besides its agents: a nats-server on a random port and `agentmesh sidecar`
// from a config object, each awaited through the file it writes when ready. Self-contained: the shipped
// demo must not load the test helpers (test/support/), which do the same with more knobs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { waitFor } from './wait.ts';

export { waitFor };

/** The folder holding package.json, whether this runs from the sources or from their build in dist/. */
export const ROOT = packageRoot(fileURLToPath(new URL('.', import.meta.url)));

export interface DemoProcess {
  readonly url: string;
  /** Everything the process printed so far. */
  output(): string;
  /** Sends SIGTERM and waits for exit. Idempotent. */
  stop(): Promise<void>;
}

export interface DemoSidecar extends DemoProcess {
  readonly outbound: string;
  readonly inbound: string;
  readonly admin: string;
}

/**
 * The node arguments that run the demo script `name` (a file of examples/demo/): its compiled .js beside
 * this module when the demo runs from dist/ (an installed package has no tsx), else its .ts through tsx.
 */
export function demoScript(name: string): string[] {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.js') ? [join(dirname(here), `${name}.js`)] : ['--import', 'tsx', join(ROOT, 'examples/demo', `${name}.ts`)];
}

/** The nats-server binary: on PATH, or Debian's /usr/sbin/nats-server. */
export function natsServerBinary(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).stdout.trim();
  if (found) return found;
  return existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : undefined;
}

/** A nats-server with JetStream in a store under `dir`, on a random port of 127.0.0.1. */
export async function startDemoNats(dir: string): Promise<DemoProcess> {
  const binary = natsServerBinary();
  if (!binary) throw new Error('nats-server not found (apt-get install nats-server)');
  const portsDir = mkdtempSync(join(dir, 'nats-ports-'));
  const child = spawn(binary, ['-a', '127.0.0.1', '-p', '-1', '-js', '-sd', join(dir, 'nats-store'), '--ports_file_dir', portsDir], { stdio: 'ignore' });
  const proc = watch(child);
  const ports = await proc.until('nats-server ports file', () => {
    const file = readdirSync(portsDir).find((f) => f.endsWith('.ports'));
    return file ? readJson<{ nats: string[] }>(join(portsDir, file)) : undefined;
  });
  return { url: `nats://127.0.0.1:${new URL(ports.nats[0] ?? '').port}`, output: proc.output, stop: proc.stop };
}

/** `agentmesh sidecar` with `config` on 127.0.0.1 port 0, ready when it has written `readyFile`. */
export async function startDemoSidecar(config: Record<string, unknown>, readyFile: string): Promise<DemoSidecar> {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-demo-sidecar-'));
  const configPath = join(dir, 'sidecar.yaml');
  writeFileSync(configPath, stringify({ listen: { outbound: '127.0.0.1:0', inbound: '127.0.0.1:0', admin: '127.0.0.1:0' }, log: { level: 'warn' }, ...config }));
  const child = spawn(process.execPath, [join(ROOT, 'bin/agentmesh.mjs'), 'sidecar', '--config', configPath, '--ready-file', readyFile], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = watch(child);
  const ready = await proc.until('sidecar ready file', () => readJson<{ outbound: string; inbound: string; admin: string }>(readyFile), 30_000);
  const stop = async () => { await proc.stop(); rmSync(dir, { recursive: true, force: true }); };
  return { url: ready.outbound, outbound: ready.outbound, inbound: ready.inbound, admin: ready.admin, output: proc.output, stop };
}

/** Collects a child's output, waits for a ready condition (failing if it exits first), stops it once. */
function watch(child: ChildProcess) {
  let output = '';
  child.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  const stop = async (): Promise<void> => {
    if (running()) child.kill('SIGTERM');
    await exited;
  };
  const until = async <T>(what: string, check: () => T | undefined, timeoutMs = 20_000): Promise<T> => {
    try {
      return await waitFor(what, () => {
        if (!running()) throw new Error(`exited with ${child.exitCode ?? child.signalCode}:\n${output}`);
        return check();
      }, timeoutMs);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  };
  return { output: () => output, stop, until };
}

function readJson<T>(path: string): T | undefined {
  try { return JSON.parse(readFileSync(path, 'utf8')) as T; } catch { return undefined; }
}

function packageRoot(dir: string): string {
  if (existsSync(join(dir, 'package.json'))) return dir;
  const parent = dirname(dir);
  if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
  return packageRoot(parent);
}
