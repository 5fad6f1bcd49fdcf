// A real nats-server (JetStream on) for one test file or benchmark: random port on 127.0.0.1, its own
// store dir, stop() and restart() on the same port and store so tests can take the registry away.
// An optional config file (e.g. from `agentmesh nats config`) adds TLS, users and its own JetStream store.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.ts';

export interface NatsServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGTERM, then waits for exit). Idempotent. */
  stop(): Promise<void>;
  /** Starts it again on the same port and store directory. */
  restart(): Promise<void>;
}

/** The nats-server binary: on PATH, or Debian's /usr/sbin/nats-server. */
export function natsServerBinary(): string | undefined {
  const which = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' });
  const found = which.stdout.trim();
  if (found) return found;
  return existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : undefined;
}

export interface NatsServerOptions {
  /** nats-server config text with a `jetstream { store_dir }` (nats-server refuses -sd next to it); the address stays ours. */
  config?: string;
  /** The address to listen on (default 127.0.0.1), e.g. a test host's address from test/support/netns.ts. */
  host?: string;
  /** A command prefix such as ['ip', 'netns', 'exec', ns] to run the server on another test host. */
  launcher?: readonly string[];
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const binary = natsServerBinary();
  if (!binary) throw new Error('nats-server not found (apt-get install nats-server)');
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-nats-'));
  const store = join(dir, 'store');
  let configArgs = ['-js', '-sd', store];
  if (options.config !== undefined) {
    const file = join(dir, 'nats-server.conf');
    writeFileSync(file, options.config, { mode: 0o600 });
    configArgs = ['-c', file];
  }
  let child: ChildProcess | undefined;
  let port = -1;

  const launch = async (): Promise<void> => {
    const portsDir = mkdtempSync(join(dir, 'ports-'));
    const host = options.host ?? '127.0.0.1';
    const [program, ...argv] = [...(options.launcher ?? []), binary, ...configArgs, '-a', host, '-p', String(port), '--ports_file_dir', portsDir];
    const proc = spawn(program ?? binary, argv, { stdio: 'ignore' });
    child = proc;
    let exited = false;
    proc.once('exit', () => { exited = true; });
    const ports = await waitFor('nats-server ports file', () => {
      if (exited) throw new Error('nats-server exited during start-up');
      const file = readdirSync(portsDir).find((f) => f.endsWith('.ports'));
      if (!file) return undefined;
      try { return JSON.parse(readFileSync(join(portsDir, file), 'utf8')) as { nats: string[] }; } catch { return undefined; }
    });
    const first = ports.nats[0] ?? '';
    port = Number(new URL(first).port);
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    await exited;
  };

  await launch();
  return {
    get url() { return `nats://${options.host ?? '127.0.0.1'}:${port}`; },
    get port() { return port; },
    stop,
    async restart() {
      await stop();
      await launch();
    },
    async [Symbol.asyncDispose]() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
