// End users and delegation on real sidecar processes: bearer JWTs verified at the calling sidecar (every
// forged or stale shape refused with 401, an unknown-kid flood without a JWKS refetch storm, the token never
// reaching the next agent), the signed chain given to agents and refused when an agent edits it or a hop
// token is replayed, rate limits with Retry-After, and an A → B → A fan-out stopped by the call budget.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server';
import { Agent, request } from 'undici';
import { connectMesh, meshContextOf, message, serveAgent, textOf, type AgentServer } from '../sdk/index.ts';
import { echoExecutor, relayExecutor } from './fixtures/agents.ts';
import { serveTestMcp, type TestMcpServer } from './fixtures/mcp-http-server.ts';
import { startTestIdp, type TestIdp } from './support/idp.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { rawRequest } from './support/raw-http.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';
import type { IdentityFiles } from './support/certs.ts';
import { loadIdentity } from '../sidecar/identity/index.ts';
import { WorkloadSigner } from '../sidecar/users/workload-signer.ts';

const AUDIENCE = 'agentmesh-test';
const userMessage = (id: string, text = 'hi') => ({ messageId: id, role: 'ROLE_USER', parts: [{ text }] });

/** An agent that keeps the headers of every A2A request and can call on with the chain it was given (or an edited one). */
function deputyExecutor(meshUrl: () => string): AgentExecutor & { replies: string[] } {
  const self = {
    replies: [] as string[],
    async execute(ctx: RequestContext, bus: ExecutionEventBus) {
      const text = textOf(ctx.userMessage.parts);
      const context = meshContextOf(ctx);
      let reply = `user=${context?.user?.subject ?? '-'}`;
      if (text.startsWith('edit:') && context?.chain) {
        // Rewrites the user in the signed chain's payload, keeping the signature: its sidecar must refuse it.
        const [h, p, s] = context.chain.split('.');
        const payload = JSON.parse(Buffer.from(p ?? '', 'base64url').toString()) as Record<string, unknown>;
        payload.sub = 'someone-else';
        const edited = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
        try {
          await connectMesh({ url: meshUrl() }).send(text.slice(5), 'x', { context: { ...context, chain: edited } });
          reply = 'edited chain accepted';
        } catch (err) {
          reply = `refused: ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`;
        }
      } else if (text.startsWith('forward:')) {
        const result = await connectMesh({ url: meshUrl() }).send(text.slice(8), 'x', { context });
        reply = 'parts' in result ? textOf(result.parts) : '';
      }
      self.replies.push(reply);
      bus.publish(AgentEvent.message(message('agent', reply, { contextId: ctx.contextId })));
      bus.finished();
    },
    async cancelTask() { /* nothing runs long */ },
  };
  return self;
}

describe('end users, delegation and limits', () => {
  let dir: string;
  let mesh: TestMesh;
  let idp: TestIdp;
  let front: SidecarProcess;
  let deputySidecar: SidecarProcess;
  let sinkSidecar: SidecarProcess;
  let frontFiles: IdentityFiles;
  const agents: AgentServer[] = [];
  const arrived: Record<string, string | string[] | undefined>[] = [];
  let deputy: ReturnType<typeof deputyExecutor>;
  let mcp: TestMcpServer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-users-'));
    mesh = await createTestMesh({ backend: 'embedded' });
    idp = await startTestIdp(dir, AUDIENCE);
    const record = (req: { headers: Record<string, string | string[] | undefined> }) => { if (req.headers['x-agentmesh-caller']) arrived.push({ ...req.headers }); };
    deputy = deputyExecutor(() => deputySidecar.outbound);
    const deputyAgent = await serveAgent({ name: 'deputy', executor: deputy, configure: (app) => app.use((req, _res, next) => { record(req); next(); }) });
    const sink = await serveAgent({ name: 'sink', executor: echoExecutor(), configure: (app) => app.use((req, _res, next) => { record(req); next(); }) });
    agents.push(deputyAgent, sink);
    mcp = await serveTestMcp(['word_count'], { onRequest: (h) => { if (h['x-agentmesh-caller']) arrived.push({ ...h }); } });
    deputySidecar = await mesh.sidecar('deputy', {
      agent: { url: deputyAgent.url },
      rateLimits: [{ name: 'front-to-deputy', from: { identity: `spiffe://${mesh.trustDomain}/agent/front` }, to: { agent: 'deputy' }, rate: '1/m', burst: 8 }],
    });
    sinkSidecar = await mesh.sidecar('sink', { agent: { url: sink.url }, mcp: { servers: [{ name: 'stats', url: mcp.url }] } });
    frontFiles = await mesh.pki.issue(`spiffe://${mesh.trustDomain}/agent/front`);
    front = await mesh.sidecar('front', {
      identity: frontFiles,
      auth: { jwt: { issuer: idp.issuer, audiences: [AUDIENCE], jwksUrl: idp.jwksUrl, jwksCa: idp.caFile, algorithms: ['ES256'], leeway: '10s', claims: ['role'] } },
    });
    await waitForAgent(front, 'deputy');
    await waitForAgent(deputySidecar, 'sink');
  });
  after(async () => {
    await mesh?.close();
    await Promise.allSettled(agents.map((a) => a.close()));
    await mcp?.close();
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** POST /a2a/deputy/message:send on the front sidecar with `authorization`. */
  function sendAsUser(authorization: string | undefined, text = 'who', id = `m-${Math.random()}`) {
    return rawRequest(front.outbound, {
      method: 'POST', path: '/a2a/deputy/message:send',
      headers: { host: new URL(front.outbound).host, 'content-type': 'application/json', 'a2a-version': '1.0', ...(authorization ? { authorization } : {}) },
      body: JSON.stringify({ message: userMessage(id, text) }),
    });
  }

  test('a valid token: the agent gets the verified user and a signed chain, never the token', async () => {
    const token = await idp.token({ sub: 'alice', role: 'analyst', email: 'alice@example.com' });
    const before = arrived.length;
    const res = await sendAsUser(`Bearer ${token}`);
    assert.equal(res.status, 200, res.body);
    assert.match(res.body, /user=alice/);
    const received = arrived.slice(before);
    assert.ok(received.length > 0);
    const signature = token.split('.')[2] ?? '';
    for (const h of received) {
      for (const [name, value] of Object.entries(h)) assert.ok(!String(value).includes(signature), `the user's token arrived in ${name}`);
      assert.equal(h.authorization, undefined);
      assert.deepEqual(JSON.parse(String(h['x-agentmesh-user'])), { subject: 'alice', claims: { role: 'analyst' } });
      const payload = JSON.parse(Buffer.from(String(h['x-agentmesh-chain']).split('.')[1] ?? '', 'base64url').toString()) as { act?: { sub?: string }; iss?: string };
      assert.equal(payload.act?.sub, `spiffe://${mesh.trustDomain}/agent/front`);
      assert.equal(payload.iss, `spiffe://${mesh.trustDomain}/agent/deputy`);
    }
  });

  test('forged, stale and incomplete tokens are refused with 401 UNAUTHENTICATED', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, string][] = [
      ['alg none', idp.none({ sub: 'mallory' })],
      ['HS256 keyed with the public key', await idp.hs256WithPublicKey({ sub: 'mallory' })],
      ['wrong audience', await idp.token({ sub: 'mallory' }, { audience: 'someone-else' })],
      ['expired beyond the leeway', await idp.token({ sub: 'mallory' }, { exp: now - 60 })],
      ['no exp', await idp.token({ sub: 'mallory' }, { exp: null })],
      ['edited payload', (await idp.token({ sub: 'alice', role: 'intern' })).replace(/^([^.]+)\.([^.]+)\./, (_m, h: string) => `${h}.${Buffer.from(JSON.stringify({ sub: 'alice', role: 'admin', iss: idp.issuer, aud: AUDIENCE, exp: now + 300 })).toString('base64url')}.`)],
      ['not a JWT', 'not-a-jwt'],
    ];
    const executed = deputy.replies.length;
    for (const [name, token] of cases) {
      const res = await sendAsUser(`Bearer ${token}`);
      assert.equal(res.status, 401, `${name}: ${res.body}`);
      assert.match(res.body, /UNAUTHENTICATED/, name);
      assert.ok(!res.body.includes(token.split('.')[2] || token), `${name}: the answer echoes the token`);
    }
    assert.equal(deputy.replies.length, executed, 'a refused call reached the agent');
  });

  test('a flood of unknown kids is refused without a JWKS refetch storm', async () => {
    await sendAsUser(`Bearer ${await idp.token({ sub: 'alice' })}`);
    const fetched = idp.fetches();
    assert.ok(fetched >= 1);
    const answers = await Promise.all(Array.from({ length: 40 }, async (_, i) => sendAsUser(`Bearer ${await idp.token({ sub: 'mallory' }, { kid: `unknown-${i}` })}`)));
    for (const res of answers) assert.equal(res.status, 401, res.body);
    assert.ok(idp.fetches() - fetched <= 1, `the JWKS was fetched ${idp.fetches() - fetched} more times`);
  });

  test('a chain edited by the agent in between is refused by its sidecar', async () => {
    const res = await sendAsUser(`Bearer ${await idp.token({ sub: 'alice', role: 'intern' })}`, 'edit:sink');
    assert.equal(res.status, 200, res.body);
    assert.match(res.body, /refused: UNAUTHENTICATED .*signature does not verify/);
  });

  test('the chain grows by one agent per hop and the user carries on', async () => {
    const before = arrived.length;
    const res = await sendAsUser(`Bearer ${await idp.token({ sub: 'bob', role: 'analyst' })}`, 'forward:sink');
    assert.equal(res.status, 200, res.body);
    const atSink = arrived.slice(before).find((h) => h['x-agentmesh-caller'] === `spiffe://${mesh.trustDomain}/agent/deputy`);
    assert.ok(atSink, 'the call did not reach sink');
    assert.deepEqual(JSON.parse(String(atSink['x-agentmesh-user'])), { subject: 'bob', claims: { role: 'analyst' } });
    const payload = JSON.parse(Buffer.from(String(atSink['x-agentmesh-chain']).split('.')[1] ?? '', 'base64url').toString()) as { act?: { sub?: string; act?: { sub?: string } } };
    assert.equal(payload.act?.sub, `spiffe://${mesh.trustDomain}/agent/deputy`);
    assert.equal(payload.act?.act?.sub, `spiffe://${mesh.trustDomain}/agent/front`);
  });

  test('a hop token that is replayed, or signed by another workload than the caller, is refused', async () => {
    const identity = await loadIdentity(frontFiles);
    const signer = new WorkloadSigner(() => identity);
    const deputyId = `spiffe://${mesh.trustDomain}/agent/deputy`;
    const token = await signer.sign({ jti: 'replay-1', aud: deputyId, act: { sub: identity.id }, sub: 'carol' }, 'agentmesh-delegation+jwt', 30);
    const client = new Agent({ connect: { cert: identity.certPem, key: identity.keyPem, ca: identity.bundlePem, rejectUnauthorized: true, checkServerIdentity: () => undefined } });
    const send = (chain: string, id: string, agent = client) => request(`${deputySidecar.inbound}/a2a/deputy/message:send`, {
      method: 'POST', dispatcher: agent, body: JSON.stringify({ message: userMessage(id) }),
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0', 'x-agentmesh-chain': chain },
    });
    try {
      const first = await send(token, 'r1');
      assert.equal(first.statusCode, 200, await first.body.text());
      const replay = await send(token, 'r2');
      assert.equal(replay.statusCode, 401);
      assert.match(await replay.body.text(), /already used/);
      // Signed by front, presented over mTLS by sink's identity.
      const sinkFiles = await mesh.pki.issue(`spiffe://${mesh.trustDomain}/agent/impostor`);
      const impostor = await loadIdentity(sinkFiles);
      const other = new Agent({ connect: { cert: impostor.certPem, key: impostor.keyPem, ca: impostor.bundlePem, checkServerIdentity: () => undefined } });
      const fresh = await signer.sign({ jti: 'replay-2', aud: deputyId, act: { sub: identity.id } }, 'agentmesh-delegation+jwt', 30);
      const stolen = await send(fresh, 'r3', other);
      assert.equal(stolen.statusCode, 401);
      assert.match(await stolen.body.text(), /signed by .*front, but the call comes from .*impostor/);
      await other.close();
      // A chain that does not end with the caller.
      const skipped = await signer.sign({ jti: 'replay-3', aud: deputyId, act: { sub: `spiffe://${mesh.trustDomain}/agent/sink` } }, 'agentmesh-delegation+jwt', 30);
      const inconsistent = await send(skipped, 'r4');
      assert.equal(inconsistent.statusCode, 401);
      assert.match(await inconsistent.body.text(), /does not end with the caller/);
    } finally {
      await client.close();
    }
  });

  test('a caller over its rate gets 429 with Retry-After', async () => {
    // rate 1/m, burst 8: the calls above spent some of the burst; spend the rest, then one more.
    let res = await sendAsUser(undefined, 'who');
    for (let i = 0; i < 10 && res.status === 200; i++) res = await sendAsUser(undefined, 'who');
    assert.equal(res.status, 429, res.body);
    assert.match(res.body, /RATE_LIMITED/);
    assert.match(res.body, /front-to-deputy/);
    const retryAfter = Number(res.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${String(res.headers['retry-after'])}`);
  });
});

describe('the per-origin call budget', () => {
  test('an A → B → A fan-out stops when the origin budget is spent, naming it', async (t) => {
    const mesh = await createTestMesh({ backend: 'embedded' });
    t.after(() => mesh.close());
    let pingSidecar: SidecarProcess | undefined;
    let pongSidecar: SidecarProcess | undefined;
    const ping = relayExecutor('ping', 'pong', () => connectMesh({ url: pingSidecar?.outbound ?? '' }));
    const pong = relayExecutor('pong', 'ping', () => connectMesh({ url: pongSidecar?.outbound ?? '' }));
    const pingAgent = await serveAgent({ name: 'ping', executor: ping });
    const pongAgent = await serveAgent({ name: 'pong', executor: pong });
    t.after(() => Promise.allSettled([pingAgent.close(), pongAgent.close()]));
    pingSidecar = await mesh.sidecar('ping', { agent: { url: pingAgent.url } });
    pongSidecar = await mesh.sidecar('pong', { agent: { url: pongAgent.url } });
    // The origin's sidecar sets the budget; the hop limit is far away, so only the budget can stop the loop.
    const origin = await mesh.sidecar('origin', { delegation: { callBudget: 4 }, limits: { maxHops: 50 } });
    await waitForAgent(origin, 'ping');
    await waitForAgent(pingSidecar, 'pong');
    await waitForAgent(pongSidecar, 'ping');
    const result = await connectMesh({ url: origin.outbound }).send('ping', 'go');
    const text = 'parts' in result ? textOf(result.parts) : '';
    // origin → ping → pong → ping → pong is 4 calls; the fifth (pong → ping) is refused.
    assert.match(text, /^ping → pong → ping → pong stopped: .*call budget/, text);
    assert.equal(ping.executions + pong.executions, 4);
  });
});
