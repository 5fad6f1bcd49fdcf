// Certificate rotation on real processes: `ca serve`, a sidecar that joined with a one-time token and
// renews a 30 s SVID under steady load in both directions with no failed call and no expired certificate
// on a new connection; tokens work once; renewal is for the caller's own ID; replaced certificate files
// (signed by a second root in the bundle) are used within 10 s; an expired identity fails closed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { createRecordSigner, openRegistry, type Registry } from '../registry/index.ts';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { caInit, caIssue, issueWorkload } from '../sidecar/identity/index.ts';
import { requestSvid } from '../sidecar/identity/ca-client.ts';
import { createCsr } from '../sidecar/identity/csr.ts';
import { runCli, startSidecarProcess, type SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { waitForAgent } from './support/mesh.ts';
import { serverCertificateOf, startCaProcess, startTlsObserver, type CaProcess, type Presented, type TlsObserver } from './support/ca-process.ts';

const TD = 'mesh.test';
const id = (name: string) => `spiffe://${TD}/agent/${name}`;
const SEND = (text: string) => JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'SendMessage',
  params: { message: { messageId: `m-${Math.random().toString(36).slice(2)}`, role: 'ROLE_USER', parts: [{ text }] } },
});

async function call(from: SidecarProcess, target: string): Promise<{ status: number; meshStatus: string | null; body: { error?: { code: number; message: string }; result?: unknown } }> {
  const res = await fetch(`${from.outbound}/a2a/${target}`, { method: 'POST', body: SEND('hi'), headers: { 'content-type': 'application/json', 'a2a-version': '1.0' } });
  return { status: res.status, meshStatus: res.headers.get('x-agentmesh-status'), body: await res.json() as { error?: { code: number; message: string } } };
}

async function readyz(s: SidecarProcess): Promise<{ status: number; reasons: string[] }> {
  const res = await fetch(`${s.admin}/readyz`);
  return { status: res.status, reasons: (await res.json() as { reasons: string[] }).reasons };
}

async function certExpirySeconds(s: SidecarProcess): Promise<number> {
  const text = await (await fetch(`${s.admin}/metrics`)).text();
  const m = /^agentmesh_cert_expiry_seconds (\S+)$/m.exec(text);
  assert.ok(m?.[1], 'agentmesh_cert_expiry_seconds is exported');
  return Number(m[1]);
}

describe('certificate rotation', () => {
  let dir = '';
  let ca: CaProcess;
  let observer: TlsObserver;
  let registry: Registry;
  const agents: AgentServer[] = [];
  const sidecars: SidecarProcess[] = [];
  let alpha: SidecarProcess;
  let beta: SidecarProcess;
  let gamma: SidecarProcess;
  let token = '';
  let tester: { cert: string; key: string; ca: string };
  const paths = { caDir: '', bundleBoth: '', registry: '' };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-rotation-'));
    paths.caDir = join(dir, 'ca');
    paths.registry = join(dir, 'registry');
    await caInit({ trustDomain: TD, dir: paths.caDir });
    await caInit({ trustDomain: TD, dir: join(dir, 'ca2') });
    // Two roots in one bundle: the mesh CA and a second one (a root change in progress).
    paths.bundleBoth = join(dir, 'bundle-both.pem');
    writeFileSync(paths.bundleBoth, `${readFileSync(join(dir, 'ca2/ca.pem'), 'utf8').trim()}\n${readFileSync(join(paths.caDir, 'ca.pem'), 'utf8')}`);
    ca = await startCaProcess(paths.caDir, ['--svid-ttl', '30s']);
    const testerFiles = await caIssue({ dir: paths.caDir, id: id('tester'), out: join(dir, 'tester') });
    tester = { cert: readFileSync(testerFiles.cert, 'utf8'), key: readFileSync(testerFiles.key, 'utf8'), ca: readFileSync(paths.bundleBoth, 'utf8') };
    const obsFiles = await caIssue({ dir: paths.caDir, id: id('obs'), out: join(dir, 'obs') });
    observer = await startTlsObserver({ cert: readFileSync(obsFiles.cert, 'utf8'), key: readFileSync(obsFiles.key, 'utf8'), ca: readFileSync(paths.bundleBoth, 'utf8') });
    // The observer stands in for a peer sidecar: its record points at it, so calls to 'obs' show it our client certificate.
    // Signed with obs's certificate, as the observer's own sidecar would (readers ignore unsigned records).
    const obsIdentity = { id: id('obs'), certPem: readFileSync(obsFiles.cert, 'utf8'), keyPem: readFileSync(obsFiles.key, 'utf8') };
    registry = await openRegistry({ ttlMs: 3000, bucket: 'agentmesh', name: 'rotation-test', dir: paths.registry, onInvalid: () => undefined, signer: createRecordSigner(() => obsIdentity) });
    await registry.announce({ kind: 'agent', name: 'obs', instance: 'obs1', identity: id('obs'), endpoint: observer.url, labels: {}, card: { name: 'obs', skills: [] } });
    const reg = { dir: paths.registry, ttl: '3s' };
    for (const name of ['alpha', 'beta']) agents.push(await serveAgent({ name, executor: echoExecutor() }));
    const made = await runCli(['ca', 'token', '--dir', paths.caDir, '--id', id('alpha')]);
    assert.equal(made.code, 0, made.stderr);
    token = made.stdout.trim();
    mkdirSync(join(dir, 'alpha'));
    // gamma's certificate ends soon and nothing renews it: by the last test it has expired.
    const caPem = { caCertPem: readFileSync(join(paths.caDir, 'ca.pem'), 'utf8'), caKeyPem: readFileSync(join(paths.caDir, 'ca-key.pem'), 'utf8') };
    const short = await issueWorkload({ ...caPem, id: id('gamma'), notBefore: new Date(Date.now() - 1000), notAfter: new Date(Date.now() + 20_000) });
    mkdirSync(join(dir, 'gamma'));
    writeFileSync(join(dir, 'gamma/cert.pem'), short.certPem);
    writeFileSync(join(dir, 'gamma/key.pem'), short.keyPem, { mode: 0o600 });
    const betaFiles = await caIssue({ dir: paths.caDir, id: id('beta'), out: join(dir, 'beta') });
    [alpha, beta, gamma] = await Promise.all([
      startSidecarProcess({
        registry: reg, agent: { url: agents[0]?.url },
        identity: { trustDomain: TD, bundle: join(paths.caDir, 'ca.pem'), ca: ca.url, token, cert: join(dir, 'alpha/cert.pem'), key: join(dir, 'alpha/key.pem') },
      }),
      startSidecarProcess({ registry: reg, agent: { url: agents[1]?.url }, identity: { trustDomain: TD, cert: betaFiles.cert, key: betaFiles.key, bundle: paths.bundleBoth } }),
      startSidecarProcess({ registry: reg, identity: { trustDomain: TD, cert: join(dir, 'gamma/cert.pem'), key: join(dir, 'gamma/key.pem'), bundle: join(paths.caDir, 'ca.pem') } }),
    ]);
    sidecars.push(alpha, beta, gamma);
    await Promise.all([waitForAgent(alpha, 'beta'), waitForAgent(alpha, 'obs'), waitForAgent(beta, 'alpha'), waitForAgent(gamma, 'beta')]);
  });

  after(async () => {
    await Promise.allSettled(sidecars.map((s) => s.stop('SIGKILL')));
    await Promise.allSettled([ca?.stop(), observer?.close(), registry?.close(), ...agents.map((a) => a.close())]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('a sidecar that joined with a token renews its 30 s SVID several times under load: 0 failed calls, no expired certificate on a new connection', async () => {
    const stop = new AbortController();
    const failures: string[] = [];
    const done: Record<string, number> = {};
    const worker = async (from: SidecarProcess, target: string, label: string) => {
      while (!stop.signal.aborted) {
        try {
          const { status, body } = await call(from, target);
          if (status !== 200 || body.error) failures.push(`${label}: ${status} ${JSON.stringify(body.error)}`);
          else done[label] = (done[label] ?? 0) + 1;
        } catch (err) {
          failures.push(`${label}: ${String(err)}`);
        }
        await delay(25); // pacing for a steady load on a shared machine, not synchronisation
      }
    };
    const served: Presented[] = [];
    const probe = async () => {
      while (!stop.signal.aborted) {
        served.push(await serverCertificateOf(alpha.inbound, tester));
        await delay(250);
      }
    };
    const first = await serverCertificateOf(alpha.inbound, tester);
    const running = [worker(alpha, 'beta', 'alpha→beta'), worker(beta, 'alpha', 'beta→alpha'), worker(alpha, 'obs', 'alpha→obs'), probe()];
    try {
      await waitFor('three renewals of alpha and its first SVID expired', () =>
        new Set(served.map((s) => s.serial)).size >= 4 && Date.now() > first.validTo + 1000, 150_000, 250);
    } finally {
      stop.abort();
      await Promise.all(running);
    }
    assert.deepEqual(failures, [], `failed calls:\n${failures.slice(0, 10).join('\n')}`);
    for (const label of ['alpha→beta', 'beta→alpha', 'alpha→obs']) assert.ok((done[label] ?? 0) > 50, `${label}: ${done[label]} calls`);
    // Server side: what alpha showed each new connection; client side: what alpha showed the observer.
    for (const s of [first, ...served, ...observer.seen]) assert.ok(s.at < s.validTo, `certificate ${s.serial} presented at ${new Date(s.at).toISOString()}, after it expired at ${new Date(s.validTo).toISOString()}`);
    assert.ok(new Set(observer.seen.map((s) => s.serial)).size >= 3, `alpha's client certificate changed ${new Set(observer.seen.map((s) => s.serial)).size - 1} times on new connections`);
    assert.equal((await readyz(alpha)).status, 200);
    const left = await certExpirySeconds(alpha);
    assert.ok(left > 0 && left <= 31, `agentmesh_cert_expiry_seconds ${left}`);
  });

  test('a join token works once; a renewal for another ID is refused', async () => {
    const config = join(dir, 'again.json');
    writeFileSync(config, JSON.stringify({
      registry: { dir: paths.registry, ttl: '3s' }, listen: { outbound: '127.0.0.1:0', inbound: '127.0.0.1:0', admin: '127.0.0.1:0' },
      identity: { trustDomain: TD, bundle: join(paths.caDir, 'ca.pem'), ca: ca.url, token },
    }));
    const again = await runCli(['sidecar', '--config', config]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /refused the CSR \(409 JOIN_TOKEN_USED\): join token for spiffe:\/\/mesh\.test\/agent\/alpha was already used/);
    // alpha's current SVID, as it keeps it on disk, asking for beta's ID.
    const current = { certPem: readFileSync(join(dir, 'alpha/cert.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'alpha/key.pem'), 'utf8') };
    const csr = await createCsr(id('beta'));
    await assert.rejects(
      requestSvid({ ca: ca.url, trustDomain: TD, bundlePem: readFileSync(join(paths.caDir, 'ca.pem'), 'utf8'), id: id('beta'), csrPem: csr.csrPem, keyPem: csr.keyPem, client: current }),
      (err: Error & { details?: Record<string, unknown> }) => err.details?.status === 403 && /asks for spiffe:\/\/mesh\.test\/agent\/beta, but this request may only get spiffe:\/\/mesh\.test\/agent\/alpha/.test(err.message),
    );
  });

  test('replaced certificate files (signed by the second root of the bundle) are presented on new connections within 10 s', async () => {
    const files = await caIssue({ dir: paths.caDir, id: id('delta'), out: join(dir, 'delta') });
    const delta = await startSidecarProcess({ registry: { dir: paths.registry, ttl: '3s' }, identity: { trustDomain: TD, cert: files.cert, key: files.key, bundle: paths.bundleBoth } });
    sidecars.push(delta);
    await waitForAgent(delta, 'obs');
    const before = await serverCertificateOf(delta.inbound, tester);
    assert.equal((await call(delta, 'obs')).status, 200);
    const next = await issueWorkload({ caCertPem: readFileSync(join(dir, 'ca2/ca.pem'), 'utf8'), caKeyPem: readFileSync(join(dir, 'ca2/ca-key.pem'), 'utf8'), id: id('delta') });
    const serial = new X509Certificate(next.certPem).serialNumber;
    writeFileSync(`${files.key}.new`, next.keyPem, { mode: 0o600 });
    writeFileSync(`${files.cert}.new`, next.certPem);
    const replaced = Date.now();
    renameSync(`${files.key}.new`, files.key);
    renameSync(`${files.cert}.new`, files.cert);
    await waitFor('delta presents the new server certificate', async () => (await serverCertificateOf(delta.inbound, tester)).serial === serial, 10_000, 100);
    await waitFor('delta presents the new client certificate', async () => {
      assert.equal((await call(delta, 'obs')).status, 200);
      return observer.seen.some((s) => s.serial === serial);
    }, Math.max(1000, 10_000 - (Date.now() - replaced)), 100);
    assert.notEqual(before.serial, serial);
  });

  test('an expired identity fails closed: /readyz names it, the metric is negative, calls get IDENTITY_EXPIRED', async () => {
    await waitFor('gamma not ready because its certificate expired', async () => (await readyz(gamma)).reasons.some((r) => /certificate spiffe:\/\/mesh\.test\/agent\/gamma expired at/.test(r)), 30_000, 250);
    assert.equal((await readyz(gamma)).status, 503);
    assert.ok(await certExpirySeconds(gamma) < 0);
    const { status, meshStatus, body } = await call(gamma, 'beta');
    // The A2A JSON-RPC route answers errors with HTTP 200 (as A2A servers do); the failure's status rides along.
    assert.equal(status, 200);
    assert.equal(meshStatus, '503');
    assert.equal(body.error?.code, -32058);
    assert.match(body.error?.message ?? '', /certificate \(spiffe:\/\/mesh\.test\/agent\/gamma\) expired at .* refusing to call spiffe:\/\/mesh\.test\/agent\/beta/);
  });
});
