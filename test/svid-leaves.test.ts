// SPIFFE leaf validation on both ends: a real sidecar's inbound listener refuses every leaf shape the
// X509-SVID spec forbids (at the TLS handshake or with 403 naming the reason) and its agent sees none
// of those calls; a sidecar refuses to start with such a leaf; a caller refuses a peer server presenting one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';
import { loadIdentity } from '../sidecar/identity/index.ts';
import { PeerPools } from '../sidecar/transport/peers.ts';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { callerExecutor, type Counted } from './fixtures/agents.ts';
import { createTestMesh, type TestMesh } from './support/mesh.ts';
import type { IdentityFiles } from './support/certs.ts';
import { oddLeaf, ODD_SHAPES, type OddShape } from './support/odd-leaves.ts';
import { runCli, type SidecarProcess } from './support/sidecar-process.ts';

const SEND = JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'SendMessage',
  params: { message: { messageId: 'm1', role: 'ROLE_USER', parts: [{ text: 'hi' }] } },
});

/** What the inbound listener did with a client certificate: an HTTP status and body, or a TLS-level refusal. */
async function callInbound(inbound: string, files: IdentityFiles): Promise<{ status: number; body: string } | { tlsError: string }> {
  const dispatcher = new Agent({
    connect: {
      ca: readFileSync(files.bundle, 'utf8'), cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8'),
      rejectUnauthorized: true, checkServerIdentity: () => undefined,
    },
  });
  try {
    const res = await undiciFetch(`${inbound}/a2a/who`, {
      method: 'POST', body: SEND, dispatcher, headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
    });
    return { status: res.status, body: await res.text() };
  } catch (err) {
    return { tlsError: String((err as Error).cause ?? err) };
  } finally {
    await dispatcher.close();
  }
}

/** The reason each shape is refused at the HTTP layer (when OpenSSL lets the handshake through). */
const REASON: Record<OddShape, RegExp> = {
  'no-path': /no path/, 'ca-true': /CA=true/, 'key-cert-sign': /keyCertSign/, 'crl-sign': /cRLSign/,
  'no-key-usage': /no keyUsage/, 'no-digital-signature': /lacks digitalSignature/, 'no-eku': /no extendedKeyUsage/,
  'client-auth-only': /lacks serverAuth/, 'server-auth-only': /lacks clientAuth/, 'long-id': /at most 2048/, 'two-uris': /2 URI SANs/,
};

describe('X509-SVID leaf rules', () => {
  let mesh: TestMesh;
  let who: SidecarProcess;
  let agent: AgentServer;
  let executor: Counted;
  const leaves = new Map<OddShape, IdentityFiles>();

  before(async () => {
    mesh = await createTestMesh({ backend: 'embedded' });
    const ex = callerExecutor();
    executor = ex;
    agent = await serveAgent({ name: 'who', executor: ex });
    who = await mesh.sidecar('who', { agent: { url: agent.url } });
    for (const shape of ODD_SHAPES) {
      leaves.set(shape, mesh.pki.write(shape, await oddLeaf(mesh.pki.ca, `spiffe://${mesh.trustDomain}/agent/odd`, shape)));
    }
  });
  after(async () => {
    await mesh?.close();
    await agent?.close();
  });

  test('a valid leaf from the same CA gets through (the control)', async () => {
    const res = await callInbound(who.inbound, await mesh.pki.issue(`spiffe://${mesh.trustDomain}/agent/fine`));
    assert.ok('status' in res, JSON.stringify(res));
    assert.equal(res.status, 200);
    assert.equal(executor.executions, 1);
  });

  for (const shape of ODD_SHAPES) {
    test(`the inbound listener refuses a leaf with shape '${shape}'`, async () => {
      const before = executor.executions;
      const files = leaves.get(shape);
      assert.ok(files);
      const res = await callInbound(who.inbound, files);
      if ('status' in res) {
        assert.equal(res.status, 403, res.body);
        assert.match(res.body, /not a valid X509-SVID/);
        assert.match(res.body, REASON[shape]);
      } else {
        // OpenSSL's own purpose checks refused it during the handshake (EKU without clientAuth, keyUsage without digitalSignature).
        assert.match(res.tlsError, /certificate|socket|reset|closed/i);
      }
      assert.equal(executor.executions, before, 'the agent must not see the call');
    });
  }

  test('a sidecar with such a leaf refuses to start, naming identity.cert and the rule', async () => {
    const files = leaves.get('ca-true');
    assert.ok(files);
    const flags = Object.entries({ ...files, 'registry.dir': String(mesh.registry.dir), 'listen.outbound': '127.0.0.1:0', 'listen.inbound': '127.0.0.1:0', 'listen.admin': '127.0.0.1:0' })
      .flatMap(([key, value]) => [`--${key.includes('.') ? key : `identity.${key}`}`, value]);
    const run = await runCli(['sidecar', ...flags], { timeoutMs: 30_000 });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /IDENTITY_INVALID: identity\.cert .*not a valid X509-SVID: it is a CA certificate/);
  });

  test('a caller refuses a peer server presenting such a leaf', async () => {
    const caller = await loadIdentity(await mesh.pki.issue(`spiffe://${mesh.trustDomain}/agent/caller`));
    const peerId = `spiffe://${mesh.trustDomain}/agent/odd`;
    for (const shape of ['ca-true', 'no-path', 'key-cert-sign', 'no-key-usage', 'no-eku', 'long-id'] as const) {
      const files = leaves.get(shape);
      assert.ok(files);
      let served = 0;
      const server = createServer({
        cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8'), ca: readFileSync(files.bundle, 'utf8'),
        requestCert: true, rejectUnauthorized: true,
      }, (_req, res) => { served++; res.end('{}'); });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const pools = new PeerPools(caller);
      try {
        // The peer is pinned to the ID its leaf carries, so only the SVID rules can refuse it.
        const id = shape === 'no-path' ? `spiffe://${mesh.trustDomain}` : shape === 'long-id' ? `${peerId}/${'x'.repeat(2100)}` : peerId;
        const pool = pools.get(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, id);
        const err = await pool.request({ method: 'GET', path: '/' }).then(() => undefined, (e: unknown) => e as NodeJS.ErrnoException);
        assert.ok(err, `shape '${shape}': the call went through`);
        assert.match(`${err.code} ${err.message}`, new RegExp(`PEER_IDENTITY_MISMATCH.*not a valid X509-SVID.*${REASON[shape].source}|certificate`), shape);
        assert.equal(served, 0);
      } finally {
        await pools.close();
        await new Promise((resolve) => { server.close(resolve); server.closeAllConnections(); });
      }
    }
  });
});
