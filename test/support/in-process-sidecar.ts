// A sidecar in the test's own process (startSidecar) on 127.0.0.1 port 0, with a fresh workload identity
// from the test PKI and an embedded registry directory; for tests that need no separate processes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, resolveConfig, startSidecar, type Logger, type Sidecar, type SidecarAddresses, type SidecarConfig } from '../../sidecar/index.ts';
import { createTestPki, type TestPki } from './certs.ts';

export interface TestSidecarOptions {
  /** The workload name: the identity is `spiffe://{trust domain}/agent/{name}`. Unique by default. */
  name?: string;
  /** Shared with other sidecars of the same test mesh; a new PKI (disposed with the sidecar) when absent. */
  pki?: TestPki;
  /** The embedded registry directory other sidecars of the test share; a new one when absent. */
  registryDir?: string;
  /** More config (agent, limits, resilience …), merged over the test defaults. */
  config?: Record<string, unknown>;
  /** Log level of the sidecar's own pino logger (default `silent`). */
  logLevel?: 'silent' | 'error' | 'warn' | 'info' | 'debug';
  /** The sidecar's logger instead of a pino logger on stdout (e.g. one writing to a stream the test reads). */
  logger?: Logger;
}

export interface TestSidecar extends AsyncDisposable {
  readonly sidecar: Sidecar;
  readonly config: SidecarConfig;
  readonly addresses: SidecarAddresses;
  readonly outbound: string;
  readonly inbound: string;
  readonly admin: string;
  readonly identity: string;
  readonly pki: TestPki;
  readonly registryDir: string;
  /** Closes the sidecar, then removes what this helper created (PKI, registry dir). Idempotent. */
  close(): Promise<void>;
}

let counter = 0;

export async function startTestSidecar(options: TestSidecarOptions = {}): Promise<TestSidecar> {
  const name = options.name ?? `t${process.pid}-${counter++}`;
  const ownPki = options.pki === undefined;
  const pki = options.pki ?? await createTestPki({ trustDomain: 'mesh.test' });
  const ownDir = options.registryDir === undefined ? mkdtempSync(join(tmpdir(), 'agentmesh-registry-')) : undefined;
  const registryDir = options.registryDir ?? ownDir ?? '';
  const cleanup = async () => {
    if (ownPki) await pki.close();
    if (ownDir) rmSync(ownDir, { recursive: true, force: true });
  };
  let sidecar: Sidecar;
  let config: SidecarConfig;
  try {
    const identity = await pki.issue(`spiffe://${pki.trustDomain}/agent/${name}`);
    const extra = options.config ?? {};
    config = resolveConfig({
      file: {
        listen: { outbound: '127.0.0.1:0', inbound: '127.0.0.1:0', admin: '127.0.0.1:0' },
        ...extra,
        registry: { ttl: '3s', ...(extra.registry as object | undefined), dir: registryDir },
        identity,
        log: { level: options.logLevel ?? 'silent', ...(extra.log as object | undefined) },
      },
    });
    sidecar = await startSidecar(config, options.logger ?? createLogger(config.log.level, { test: name }));
  } catch (err) {
    await cleanup();
    throw err;
  }
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= (async () => {
    try { await sidecar.close(); } finally { await cleanup(); }
  })());
  return {
    sidecar, config, addresses: sidecar.addresses, identity: sidecar.identity, pki, registryDir,
    outbound: sidecar.addresses.outbound, inbound: sidecar.addresses.inbound, admin: sidecar.addresses.admin,
    close, [Symbol.asyncDispose]: close,
  };
}
