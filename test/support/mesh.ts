// A test mesh: a CA with workload certificates on disk, a registry choice (a real nats-server or an
// embedded directory) and sidecar processes built from them. Everything is cleaned up by `close()`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSidecarProcess, type SidecarProcess } from './sidecar-process.ts';
import { startNatsServer, type NatsServer } from './nats-server.ts';
import { createTestPki, type TestPki } from './certs.ts';
import { waitFor } from './wait.ts';

export interface TestMesh extends AsyncDisposable {
  readonly pki: TestPki;
  readonly trustDomain: string;
  readonly registry: Record<string, unknown>;
  readonly nats: NatsServer | undefined;
  /** The mesh CA as `agentmesh ca init` writes it (ca.pem, ca-key.pem): for `tools approve --ca-dir`. */
  readonly caDir: string;
  /** Starts a sidecar process with a fresh workload identity `spiffe://{td}/agent/{name}`. */
  sidecar(name: string, extra?: Record<string, unknown>): Promise<SidecarProcess>;
  close(): Promise<void>;
}

export async function createTestMesh(options: { backend: 'nats' | 'embedded'; ttl?: string; trustDomain?: string }): Promise<TestMesh> {
  const trustDomain = options.trustDomain ?? 'mesh.test';
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-mesh-'));
  const pki = await createTestPki({ trustDomain });
  const nats = options.backend === 'nats' ? await startNatsServer() : undefined;
  const registry = {
    ttl: options.ttl ?? '3s',
    ...(nats ? { nats: nats.url, bucket: `b${Math.random().toString(36).slice(2, 10)}` } : { dir: join(dir, 'registry') }),
  };
  const caDir = join(dir, 'ca');
  mkdirSync(caDir);
  writeFileSync(join(caDir, 'ca.pem'), pki.ca.certPem);
  writeFileSync(join(caDir, 'ca-key.pem'), pki.ca.keyPem, { mode: 0o600 });
  const sidecars: SidecarProcess[] = [];
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= (async () => {
    await Promise.allSettled(sidecars.map((s) => s.stop('SIGKILL')));
    await nats?.stop();
    await pki.close?.();
    rmSync(dir, { recursive: true, force: true });
  })());
  return {
    pki, trustDomain, registry, nats, caDir,
    async sidecar(name, extra = {}) {
      const identity = await pki.issue(`spiffe://${trustDomain}/agent/${name}`);
      const sidecar = await startSidecarProcess({ registry, identity, ...extra });
      sidecars.push(sidecar);
      return sidecar;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Waits until `sidecar`'s registry view lists `agent` (with at least `instances` instances). */
export async function waitForAgent(sidecar: SidecarProcess, agent: string, instances = 1): Promise<void> {
  await waitFor(`agent '${agent}' visible at ${sidecar.outbound}`, async () => {
    const res = await fetch(`${sidecar.outbound}/registry/agents?name=${agent}`);
    const body = await res.json() as { agents: { instances: unknown[] }[] };
    return (body.agents[0]?.instances.length ?? 0) >= instances;
  }, 15_000);
}

/** Waits until `sidecar`'s registry view no longer lists `agent`. Returns how long that took. */
export async function waitForAgentGone(sidecar: SidecarProcess, agent: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  await waitFor(`agent '${agent}' gone at ${sidecar.outbound}`, async () => {
    const res = await fetch(`${sidecar.outbound}/registry/agents?name=${agent}`);
    const body = await res.json() as { agents: unknown[] };
    return body.agents.length === 0;
  }, timeoutMs);
  return Date.now() - started;
}
