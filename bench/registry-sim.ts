// The registry-scale benchmark's registry clients, run as a child process so that their signing and
// verifying do not share a process (and its event loop) with the load generator: either the simulator
// (1,000 simulated agents announced and heartbeating like real sidecars, signed as one identity the CA
// granted each name) or the in-process watchers (registries that only read). The parent drives it over
// a loopback HTTP port it prints on the READY line. Times are process.hrtime (CLOCK_MONOTONIC, shared by
// every process on the machine), in ms.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRecordSigner, createRecordVerifier, openRegistry, signGrant, type AnnouncedRecord, type Registry } from '../registry/index.ts';
import { issueWorkload } from '../sidecar/identity/index.ts';

export interface RegistrySimOptions {
  role: 'simulator' | 'watchers';
  nats: string;
  bucket: string;
  ttlMs: number;
  /** The mesh CA (bench-only, created by the run): the simulator signs grants and its workload with it. */
  caCertPem: string;
  caKeyPem: string;
}

export interface RegistrySimInfo {
  control: string;
}

/** The simulator signs every simulated record as one identity, granted each name by the CA. */
export const SIMULATOR = 'spiffe://bench.test/agent/simulator';

const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** A simulated record shaped like a real agent's: a ~1 KB card with skills and two interfaces. */
function simulated(name: string, i: number, grant: string): AnnouncedRecord {
  const url = `https://10.0.${Math.floor(i / 250)}.${i % 250}:15443`;
  return {
    kind: 'agent', name, instance: `sim${i}`, identity: SIMULATOR, grants: [grant], endpoint: url, labels: { team: `t${i % 17}`, region: i % 2 ? 'eu' : 'us' },
    card: {
      name, description: `simulated agent ${i} for the registry-scale benchmark`, version: '1.0.0',
      supportedInterfaces: [{ url: `${url}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' }, { url: `${url}/a2a/rest`, protocolBinding: 'HTTP+JSON', protocolVersion: '1.0' }],
      capabilities: { streaming: true, pushNotifications: false },
      defaultInputModes: ['text/plain'], defaultOutputModes: ['text/plain'],
      skills: [0, 1, 2].map((k) => ({ id: `skill-${(i + k) % 50}`, name: `Skill ${(i + k) % 50}`, description: 'does one simulated thing well', tags: [`tag-${(i + k) % 23}`, 'simulated'] })),
    },
  };
}

type Handler = (body: Record<string, unknown>) => Promise<unknown>;

async function simulator(options: RegistrySimOptions): Promise<Record<string, Handler>> {
  // One workload certificate for the simulator (issuing 1,000 would take longer than the whole run).
  const pair = await issueWorkload({ caCertPem: options.caCertPem, caKeyPem: options.caKeyPem, id: SIMULATOR });
  const signer = createRecordSigner(() => ({ id: SIMULATOR, certPem: pair.certPem, keyPem: pair.keyPem }));
  // It reads the bucket as a sidecar does, so it verifies what it reads.
  const verifier = createRecordVerifier({ trustDomain: 'bench.test', bundle: () => options.caCertPem });
  const grants = new Map<string, Promise<string>>();
  const grant = (name: string): Promise<string> => {
    let token = grants.get(name);
    if (!token) grants.set(name, (token = signGrant({ caKeyPem: options.caKeyPem, identity: SIMULATOR, agents: [name], mcp: [] })));
    return token;
  };
  let registry: Registry | undefined;
  const open = async (): Promise<Registry> => (registry ??= await openRegistry({ nats: options.nats, bucket: options.bucket, ttlMs: options.ttlMs, signer, verifier, name: 'bench-simulator' }));
  return {
    /** Announces sim-0 … sim-(count-1); the grants are signed first (an operator issues them ahead). */
    async populate({ count }) {
      const n = Number(count);
      const tokens = await Promise.all(Array.from({ length: n }, (_, i) => grant(`sim-${i}`)));
      const sim = await open();
      const t0 = monotonicMs();
      for (let i = 0; i < n; i += 50) {
        await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, k) => sim.announce(simulated(`sim-${i + k}`, i + k, tokens[i + k] ?? ''))));
      }
      return { startedAt: t0, announcedAt: monotonicMs() };
    },
    /** One new record; `at` is taken after its grant is signed, right before the announce. */
    async announce({ name, index }) {
      const token = await grant(String(name));
      const sim = await open();
      const at = monotonicMs();
      await sim.announce(simulated(String(name), Number(index), token));
      return { at };
    },
    /** Withdraws every simulated record (bounded, so a slow NATS cannot hold the run). */
    async withdraw() {
      const sim = registry;
      registry = undefined;
      if (sim) await Promise.race([sim.close(), new Promise((resolve) => setTimeout(resolve, 10_000))]);
      return {};
    },
  };
}

function watchers(options: RegistrySimOptions): Record<string, Handler> {
  const verifier = createRecordVerifier({ trustDomain: 'bench.test', bundle: () => options.caCertPem });
  let open: Registry[] = [];
  const expected = new Map<string, Promise<number>>();
  return {
    /** Opens `count` watchers; resolves once every one holds `until`. */
    async open({ count, until }) {
      for (let w = 0; w < Number(count); w++) open.push(await openRegistry({ nats: options.nats, bucket: options.bucket, ttlMs: options.ttlMs, verifier, name: `bench-watcher-${w}` }));
      await Promise.all(open.map((w) => seen(w, String(until))));
      return { watchers: open.length };
    },
    /** Starts watching for `name` (call before it is announced); `seen` then answers when every watcher has it. */
    async expect({ name }) {
      const all = Promise.all(open.map((w) => seen(w, String(name)))).then((times) => Math.max(...times));
      all.catch(() => undefined);
      expected.set(String(name), all);
      return {};
    },
    async seen({ name }) {
      const at = await expected.get(String(name));
      expected.delete(String(name));
      return { at };
    },
    async close() {
      await Promise.allSettled(open.map((w) => w.close()));
      open = [];
      return {};
    },
  };
}

/** When `watcher` holds an instance of `name` (exact: the view's onChange), in monotonic ms. */
function seen(watcher: Registry, name: string): Promise<number> {
  if (watcher.agentInstances(name).length > 0) return Promise.resolve(monotonicMs());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`a watcher did not see '${name}' within 30 s`)); }, 30_000);
    const off = watcher.onChange(() => {
      if (watcher.agentInstances(name).length === 0) return;
      clearTimeout(timer);
      off();
      resolve(monotonicMs());
    });
  });
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as RegistrySimOptions;
  const handlers = options.role === 'simulator' ? await simulator(options) : watchers(options);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const handler = handlers[(req.url ?? '').slice(1)];
      const reply = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (!handler) { reply(404, { error: `no such command ${req.url ?? ''}` }); return; }
      handler(chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> : {})
        .then((out) => reply(200, out), (err: unknown) => reply(500, { error: err instanceof Error ? err.message : String(err) }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  process.once('SIGTERM', () => {
    void Promise.race([(handlers.close ?? handlers.withdraw)?.({}), new Promise((resolve) => setTimeout(resolve, 3000))]).finally(() => process.exit(0));
  });
  const info: RegistrySimInfo = { control: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  console.log(`READY ${JSON.stringify(info)}`);
}

await main();
