// A 3-node nats-server cluster with JetStream on loopback for the tests: random client and monitoring
// ports, cluster routes between the nodes, a store directory per node. Nodes can be killed (SIGKILL)
// and started again on the same ports and store; waitForMetaLeader() blocks until JetStream can create streams.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './free-port.ts';
import { natsServerBinary } from './nats-server.ts';
import { waitFor } from './wait.ts';

export interface ClusterNode {
  readonly name: string;
  /** nats://127.0.0.1:PORT (the same after a restart). */
  readonly url: string;
  running(): boolean;
}

export interface NatsCluster extends AsyncDisposable {
  readonly nodes: readonly ClusterNode[];
  /** Every node's client URL: what registry.nats lists. */
  readonly urls: string[];
  /** SIGKILL, then waits for the exit. */
  kill(index: number): Promise<void>;
  /** Starts a stopped node again on its ports and store. */
  start(index: number): Promise<void>;
  /** Waits until every running node names the same JetStream meta leader; returns its name. */
  waitForMetaLeader(timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

interface NodeState {
  name: string;
  dir: string;
  config: string;
  port: number;
  monitor: number;
  child: ChildProcess | undefined;
}

export async function startNatsCluster(options: { size?: number } = {}): Promise<NatsCluster> {
  const binary = natsServerBinary();
  if (!binary) throw new Error('nats-server not found (apt-get install nats-server)');
  const size = options.size ?? 3;
  const root = mkdtempSync(join(tmpdir(), 'agentmesh-nats-cluster-'));
  const routePorts = await freePorts(size);
  const states: NodeState[] = routePorts.map((routePort, i) => {
    const name = `n${i + 1}`;
    const dir = join(root, name);
    mkdirSync(join(dir, 'store'), { recursive: true });
    const routes = routePorts.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`);
    const config = join(dir, 'nats-server.conf');
    writeFileSync(config, [
      `server_name: ${name}`,
      `jetstream { store_dir: ${JSON.stringify(join(dir, 'store'))}, max_memory_store: 64MB, max_file_store: 1GB }`,
      `cluster { name: agentmesh-test, listen: "127.0.0.1:${routePort}", routes: [${routes.map((r) => JSON.stringify(r)).join(', ')}] }`,
    ].join('\n'));
    return { name, dir, config, port: -1, monitor: -1, child: undefined };
  });

  const launch = async (state: NodeState): Promise<void> => {
    const portsDir = mkdtempSync(join(state.dir, 'ports-'));
    const child = spawn(binary, ['-c', state.config, '-a', '127.0.0.1', '-p', String(state.port), '-m', String(state.monitor), '--ports_file_dir', portsDir], { stdio: 'ignore' });
    state.child = child;
    let exited = false;
    child.once('exit', () => { exited = true; });
    const ports = await waitFor(`nats-server ${state.name} ports file`, () => {
      if (exited) throw new Error(`nats-server ${state.name} exited during start-up`);
      const file = readdirSync(portsDir).find((f) => f.endsWith('.ports'));
      if (!file) return undefined;
      try { return JSON.parse(readFileSync(join(portsDir, file), 'utf8')) as { nats: string[]; monitoring: string[] }; } catch { return undefined; }
    });
    state.port = Number(new URL(ports.nats[0] ?? '').port);
    state.monitor = Number(new URL(ports.monitoring[0] ?? '').port);
  };

  const running = (state: NodeState) => state.child !== undefined && state.child.exitCode === null && state.child.signalCode === null;
  const kill = async (state: NodeState): Promise<void> => {
    const child = state.child;
    if (!child || !running(state)) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  };

  const stateAt = (index: number): NodeState => {
    const state = states[index];
    if (!state) throw new Error(`no node ${index} in a cluster of ${size}`);
    return state;
  };

  try {
    // Client and monitoring ports: random at the first start (-1, read back from the ports file), the same after a restart.
    await Promise.all(states.map(launch));
  } catch (err) {
    await Promise.all(states.map(kill));
    rmSync(root, { recursive: true, force: true });
    throw err;
  }

  let closing: Promise<void> | undefined;
  const close = () => (closing ??= (async () => {
    await Promise.all(states.map(kill));
    rmSync(root, { recursive: true, force: true });
  })());

  return {
    nodes: states.map((s) => ({ name: s.name, get url() { return `nats://127.0.0.1:${s.port}`; }, running: () => running(s) })),
    get urls() { return states.map((s) => `nats://127.0.0.1:${s.port}`); },
    kill: (index) => kill(stateAt(index)),
    async start(index) {
      const state = stateAt(index);
      if (!running(state)) await launch(state);
    },
    async waitForMetaLeader(timeoutMs = 30_000) {
      return waitFor('a JetStream meta leader known to every running node', async () => {
        const leaders = await Promise.all(states.filter(running).map(async (s) => {
          const jsz = await (await fetch(`http://127.0.0.1:${s.monitor}/jsz`)).json() as { meta_cluster?: { leader?: string } };
          return jsz.meta_cluster?.leader;
        }));
        const first = leaders[0];
        return first && leaders.every((l) => l === first) ? first : undefined;
      }, timeoutMs, 100);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
