// The inbound listener speaks only mTLS with certificates from the mesh CA and the right trust domain,
// the caller pins the peer to the SPIFFE ID its registry record claims, and the agent sees the verified
// caller in x-agentmesh-caller whatever the caller sends.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { createCa, issueWorkload, signWorkload } from '../sidecar/identity/index.ts';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { callerExecutor } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import type { IdentityFiles } from './support/certs.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';
import { createRecordSigner, type AgentRecord } from '../registry/index.ts';

const SEND = JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'SendMessage',
  params: { message: { messageId: 'm1', role: 'ROLE_USER', parts: [{ text: 'who am I?' }] } },
});

/** A JSON-RPC SendMessage straight to an inbound listener with the given client certificate (or none). */
async function callInbound(inbound: string, files: IdentityFiles | undefined, headers: Record<string, string> = {}) {
  const dispatcher = new Agent({
    connect: {
      ca: readFileSync(files?.bundle ?? meshBundle, 'utf8'),
      ...(files ? { cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8') } : {}),
      rejectUnauthorized: true, checkServerIdentity: () => undefined,
    },
  });
  try {
    const res = await undiciFetch(`${inbound}/a2a/who`, {
      method: 'POST', body: SEND, dispatcher,
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0', ...headers },
    });
    return { status: res.status, body: await res.json() as Record<string, unknown> };
  } finally {
    await dispatcher.close();
  }
}

/** The mesh's trust bundle, so the test client trusts the sidecar it calls. */
let meshBundle = '';

function replyText(body: Record<string, unknown>): string {
  const result = body.result as { message?: { parts?: { text?: string }[] } } | undefined;
  return result?.message?.parts?.[0]?.text ?? JSON.stringify(body);
}

describe('mTLS between sidecars', () => {
  let mesh: TestMesh;
  let who: SidecarProcess;
  let caller: SidecarProcess;
  let agent: AgentServer;
  let good: IdentityFiles;

  before(async () => {
    mesh = await createTestMesh({ backend: 'embedded' });
    agent = await serveAgent({ name: 'who', executor: callerExecutor() });
    who = await mesh.sidecar('who', { agent: { url: agent.url } });
    caller = await mesh.sidecar('caller');
    await waitForAgent(caller, 'who');
    good = await mesh.pki.issue(`spiffe://${mesh.trustDomain}/agent/tester`);
    meshBundle = good.bundle;
  });
  after(async () => {
    await mesh?.close();
    await agent?.close();
  });

  test('a call through the mesh reaches the agent with the caller identity', async () => {
    const res = await fetch(`${caller.outbound}/a2a/who`, { method: 'POST', body: SEND, headers: { 'content-type': 'application/json', 'a2a-version': '1.0' } });
    assert.equal(res.status, 200);
    assert.equal(replyText(await res.json() as Record<string, unknown>), `spiffe://${mesh.trustDomain}/agent/caller`);
  });

  test('a caller cannot choose the x-agentmesh-caller the agent sees', async () => {
    const forged = { 'x-agentmesh-caller': `spiffe://${mesh.trustDomain}/agent/admin` };
    const viaMesh = await fetch(`${caller.outbound}/a2a/who`, { method: 'POST', body: SEND, headers: { 'content-type': 'application/json', 'a2a-version': '1.0', ...forged } });
    assert.equal(replyText(await viaMesh.json() as Record<string, unknown>), `spiffe://${mesh.trustDomain}/agent/caller`);
    const direct = await callInbound(who.inbound, good, forged);
    assert.equal(direct.status, 200);
    assert.equal(replyText(direct.body), `spiffe://${mesh.trustDomain}/agent/tester`);
  });

  test('refuses plain HTTP', async () => {
    const url = new URL(who.inbound);
    await assert.rejects(new Promise((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, path: '/a2a/who', method: 'POST' }, (res) => {
        // Node's TLS server never answers HTTP; any response at all is a failure of this test.
        resolve(res.statusCode);
      });
      req.on('error', reject);
      req.end(SEND);
    }));
  });

  test('refuses TLS without a client certificate', async () => {
    await assert.rejects(callInbound(who.inbound, undefined), (err: Error) => /certificate|socket|closed|reset|ECONNRESET/i.test(String(err.cause ?? err)));
  });

  test('refuses a certificate from another CA', async () => {
    const other = await createCa({ trustDomain: mesh.trustDomain });
    const pair = await issueWorkload({ caCertPem: other.certPem, caKeyPem: other.keyPem, id: `spiffe://${mesh.trustDomain}/agent/intruder` });
    const files = mesh.pki.write('foreign', pair);
    await assert.rejects(callInbound(who.inbound, files));
  });

  test('refuses a certificate for another trust domain', async () => {
    // Signed by the mesh CA, so the chain verifies: only the trust domain in the SPIFFE ID is wrong.
    const pair = await signWorkload({ caCertPem: mesh.pki.ca.certPem, caKeyPem: mesh.pki.ca.keyPem, id: 'spiffe://elsewhere.test/agent/x' });
    const res = await callInbound(who.inbound, mesh.pki.write('other-domain', pair));
    assert.equal(res.status, 403);
    assert.match(JSON.stringify(res.body), /trust domain 'elsewhere\.test'/);
  });

  test('refuses an expired certificate', async () => {
    const files = await mesh.pki.issue(`spiffe://${mesh.trustDomain}/agent/old`, {
      notBefore: new Date(Date.now() - 3 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000),
    });
    await assert.rejects(callInbound(who.inbound, files));
  });

  test('the caller refuses an endpoint whose certificate is not the identity registered for it', async () => {
    // A record signed by agent/spoofed (a valid mesh certificate) points at an endpoint served by an
    // impostor with another valid certificate (as a stale record would): the caller must not talk to it.
    const impostorAgent = await serveAgent({ name: 'impostor', executor: callerExecutor() });
    try {
      const impostor = await mesh.sidecar('impostor', { agent: { url: impostorAgent.url }, instance: 'imp1' });
      const id = `spiffe://${mesh.trustDomain}/agent/spoofed`;
      const files = await mesh.pki.issue(id);
      const signer = createRecordSigner(() => ({ id, certPem: readFileSync(files.cert, 'utf8'), keyPem: readFileSync(files.key, 'utf8') }));
      const now = new Date().toISOString();
      const record: AgentRecord = {
        kind: 'agent', name: 'spoofed', instance: 'forged1', identity: id, endpoint: impostor.inbound, labels: {},
        card: { name: 'spoofed' }, startedAt: now, heartbeatAt: new Date(Date.now() + 2500).toISOString(), // fresh for ~5.5 s (TTL 3 s)
      };
      writeFileSync(join(String(mesh.registry.dir), 'agents.spoofed.forged1.json'), await signer.sign(record));
      await waitForAgent(caller, 'spoofed');
      const res = await fetch(`${caller.outbound}/a2a/spoofed`, { method: 'POST', body: SEND, headers: { 'content-type': 'application/json', 'a2a-version': '1.0' } });
      assert.equal(res.status, 200, 'a JSON-RPC error, with HTTP 200 as A2A servers answer');
      assert.equal(res.headers.get('x-agentmesh-status'), '502');
      const body = await res.json() as { error: { message: string; data: { code: string } } };
      assert.equal(body.error.data.code, 'PEER_IDENTITY_MISMATCH');
      assert.match(body.error.message, new RegExp(`expected spiffe://${mesh.trustDomain}/agent/spoofed`));
      assert.match(body.error.message, /presented spiffe:\/\/mesh\.test\/agent\/impostor/);
    } finally {
      await impostorAgent.close();
    }
  });
});
