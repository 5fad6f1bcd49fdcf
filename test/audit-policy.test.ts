// The policy cases (test/policy.test.ts, test/users.test.ts, test/confused-deputy.test.ts) replayed on real
// sidecar processes with the audit on (embedded registry, JSON-lines files), each checked against the
// audit record it leaves, field by field, on the calling and the receiving sidecar: request id, caller,
// user, chain, target, method, task/context id, tool, decision, rule, trace id, status. Afterwards no
// audit file and no sidecar log holds a secret the test sent (JWTs, api key, cookie, bearer token, push
// token, MCP session ids).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, fetch as undiciFetch } from 'undici';
import { stringify } from 'yaml';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { echoExecutor, wordCountDeputy } from './fixtures/agents.ts';
import { serveTestMcp, type TestMcpServer } from './fixtures/mcp-http-server.ts';
import { startTestIdp, type TestIdp } from './support/idp.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { rawRequest } from './support/raw-http.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

const AUDIENCE = 'agentmesh-test';
const TD = 'mesh.test';
const id = (name: string) => `spiffe://${TD}/agent/${name}`;
/** Sent on calls; none may be written to the audit or a log. */
const SECRETS = {
  authorization: `Bearer bearer-${randomUUID()}`, cookie: `sid=cookie-${randomUUID()}`, 'x-api-key': `key-${randomUUID()}`,
};
const PUSH_TOKEN = `push-${randomUUID()}`;

type AuditRecord = Record<string, unknown>;

function policyText(mode: 'enforce' | 'audit'): string {
  return stringify({
    mode, default: 'deny',
    rules: [
      { name: 'interns-never-count-words', action: 'deny', from: { user: { claims: { role: 'intern' } } }, to: { mcp: 'stats', tools: ['word_count'] } },
      { name: 'planner-researches', from: { identity: id('planner') }, to: { agent: 'researcher', methods: ['SendMessage', 'GetTask'] } },
      { name: 'planner-counts', from: { identity: id('planner') }, to: { mcp: 'stats', tools: ['word_count'], arguments: { text: { pattern: '[a-z ]*' } } } },
      { name: 'deputy-counts-words', from: { identity: id('deputy') }, to: { mcp: 'stats', tools: ['word_count'] } },
      { name: 'front-asks-deputy', from: { identity: id('front') }, to: { agent: 'deputy' } },
    ],
  });
}

function sendBody(method: string, params: Record<string, unknown>): string {
  return JSON.stringify({ jsonrpc: '2.0', id: 1, method, params });
}

function userMessage(text: string, contextId?: string): Record<string, unknown> {
  return { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text }], ...(contextId ? { contextId } : {}) };
}

describe('every policy case leaves its audit record, and no secret', () => {
  let dir: string;
  let auditDir: string;
  let mesh: TestMesh;
  let idp: TestIdp;
  let stats: TestMcpServer;
  const agents: AgentServer[] = [];
  const sidecars: Record<'researcher' | 'deputy' | 'front' | 'planner' | 'intruder' | 'auditor', SidecarProcess> = {} as never;
  /** Every secret value the test sent (tokens, session ids), for the final grep. */
  const sent: string[] = [...Object.values(SECRETS).map((v) => v.replace(/^(Bearer |sid=)/, '')), PUSH_TOKEN];
  const mcpClients: Client[] = [];

  function records(): AuditRecord[] {
    return readdirSync(auditDir).filter((f) => f.endsWith('.jsonl') && !f.endsWith('.spool.jsonl'))
      .flatMap((f) => readFileSync(join(auditDir, f), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as AuditRecord));
  }

  /** The one call record `instance` wrote that matches `where`, once it is in the file. */
  function recordOf(instance: string, where: (r: AuditRecord) => boolean, what: string): Promise<AuditRecord> {
    return waitFor(`${instance}'s record of ${what}`, () => {
      const found = records().filter((r) => r.kind === 'call' && r.instance === instance && where(r));
      assert.ok(found.length <= 1, `${found.length} records of ${what} at ${instance}`);
      return found[0];
    }, 15_000);
  }

  /** Field by field: the fields named must be equal; each named `undefined` must be absent. */
  function expectFields(record: AuditRecord, expected: Record<string, unknown>): void {
    for (const [key, value] of Object.entries(expected)) {
      assert.deepEqual(record[key], value, `${key} of ${JSON.stringify(record)}`);
    }
    assert.equal(record.kind, 'call');
    assert.equal(typeof record.durationMs, 'number');
    assert.match(String(record.time), /^\d{4}-\d\d-\d\dT/);
    assert.match(String(record.hash), /^[0-9a-f]{64}$/);
  }

  async function a2a(from: SidecarProcess, path: string, body: string, extra: Record<string, string> = {}): Promise<{ status: number; body: string; requestId: string }> {
    const requestId = randomUUID();
    const res = await rawRequest(from.outbound, {
      method: 'POST', path,
      headers: { ...SECRETS, host: new URL(from.outbound).host, 'content-type': 'application/json', 'a2a-version': '1.0', 'x-agentmesh-request-id': requestId, ...extra },
      body,
    });
    return { status: res.status, body: res.body, requestId };
  }

  /** An MCP client on `url` whose requests carry request id `requestId` and the secret headers. */
  async function mcpClient(url: string, requestId: string): Promise<Client> {
    const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { ...SECRETS, 'x-agentmesh-request-id': requestId } } });
    const client = new Client({ name: 'audit-policy-test', version: '1.0.0' });
    await client.connect(transport);
    if (transport.sessionId) sent.push(transport.sessionId);
    mcpClients.push(client);
    return client;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-audit-policy-'));
    auditDir = join(dir, 'audit');
    mesh = await createTestMesh({ backend: 'embedded', trustDomain: TD });
    idp = await startTestIdp(dir, AUDIENCE);
    const enforce = join(dir, 'policy.yaml');
    writeFileSync(enforce, policyText('enforce'));
    const auditMode = join(dir, 'policy-audit.yaml');
    writeFileSync(auditMode, policyText('audit'));
    const common = (instance: string, policyFile = enforce) => ({ instance, policy: { file: policyFile }, audit: { dir: auditDir, flushInterval: '5ms' }, log: { level: 'debug' } });
    stats = await serveTestMcp(['word_count', 'shout']);
    const researcher = await serveAgent({ name: 'researcher', executor: echoExecutor() });
    const deputy = await serveAgent({ name: 'deputy', executor: wordCountDeputy(() => sidecars.deputy.outbound) });
    agents.push(researcher, deputy);
    sidecars.researcher = await mesh.sidecar('researcher', { ...common('researcher1'), agent: { url: researcher.url }, mcp: { servers: [{ name: 'stats', url: stats.url }] } });
    sidecars.deputy = await mesh.sidecar('deputy', { ...common('deputy1'), agent: { url: deputy.url } });
    sidecars.front = await mesh.sidecar('front', {
      ...common('front1'),
      auth: { jwt: { issuer: idp.issuer, audiences: [AUDIENCE], jwksFile: idp.jwksFile, algorithms: ['ES256'], claims: ['role'] } },
    });
    sidecars.planner = await mesh.sidecar('planner', common('planner1'));
    sidecars.intruder = await mesh.sidecar('intruder', common('intruder1'));
    sidecars.auditor = await mesh.sidecar('auditor', common('auditor1', auditMode));
    await waitForAgent(sidecars.planner, 'researcher');
    await waitForAgent(sidecars.front, 'deputy');
    await waitFor('stats visible', async () => (await (await fetch(`${sidecars.deputy.outbound}/registry/mcp`)).text()).includes('"stats"'), 15_000);
    await waitFor('stats visible', async () => (await (await fetch(`${sidecars.planner.outbound}/registry/mcp`)).text()).includes('"stats"'), 15_000);
  });
  after(async () => {
    await Promise.allSettled(mcpClients.map((c) => c.close()));
    await mesh?.close();
    await Promise.allSettled(agents.map((a) => a.close()));
    await stats?.close();
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('default deny (JSON-RPC and REST): recorded as deny, no rule, at the calling sidecar and at the receiving one', async () => {
    const traceId = randomUUID().replace(/-/g, '');
    const rpc = await a2a(sidecars.intruder, '/a2a/researcher', sendBody('SendMessage', { message: userMessage('hello', 'ctx-deny') }), { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    assert.match(rpc.body, /-32060/);
    expectFields(await recordOf('intruder1', (r) => r.requestId === rpc.requestId, 'the denied JSON-RPC call'), {
      requestId: rpc.requestId, direction: 'outbound', caller: id('intruder'), user: undefined, chain: undefined, target: 'agent/researcher',
      method: 'SendMessage', contextId: 'ctx-deny', taskId: undefined, tool: undefined, decision: 'deny', rule: undefined, traceId, status: 403,
    });
    const rest = await a2a(sidecars.intruder, '/a2a/researcher/message:send', JSON.stringify({ message: userMessage('hi') }));
    assert.equal(rest.status, 403);
    expectFields(await recordOf('intruder1', (r) => r.requestId === rest.requestId, 'the denied REST call'), {
      requestId: rest.requestId, direction: 'outbound', target: 'agent/researcher', method: 'SendMessage', decision: 'deny', rule: undefined, status: 403,
    });
    // The receiving sidecar decides on its own: a peer holding the intruder's certificate, straight to it.
    const files = await mesh.pki.issue(id('intruder'));
    const peer = new Agent({ connect: { ca: readFileSync(files.bundle, 'utf8'), cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8'), checkServerIdentity: () => undefined } });
    const direct = randomUUID();
    try {
      const res = await undiciFetch(`${sidecars.researcher.inbound}/a2a/researcher`, {
        method: 'POST', dispatcher: peer, body: sendBody('SendMessage', { message: userMessage('hello') }),
        headers: { 'content-type': 'application/json', 'a2a-version': '1.0', 'x-agentmesh-request-id': direct },
      });
      assert.equal(res.status, 403);
      await res.arrayBuffer();
    } finally {
      await peer.close();
    }
    expectFields(await recordOf('researcher1', (r) => r.requestId === direct, 'the denied inbound call'), {
      requestId: direct, direction: 'inbound', caller: id('intruder'), user: undefined, target: 'agent/researcher', method: 'SendMessage',
      decision: 'deny', rule: undefined, status: 403,
    });
    assert.equal(records().filter((r) => r.requestId === rpc.requestId).length, 1, 'refused at the caller: the receiving side never saw it');
  });

  test('allowed and denied methods: allow with its rule on both sides (same request and trace id), deny for another method', async () => {
    const traceId = randomUUID().replace(/-/g, '');
    const ok = await a2a(sidecars.planner, '/a2a/researcher', sendBody('SendMessage', {
      message: userMessage('hello', 'ctx-allowed'),
      configuration: { pushNotificationConfig: { url: 'https://push.example.test/hook', token: PUSH_TOKEN } },
    }), { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    assert.equal(ok.status, 200, ok.body);
    assert.match(ok.body, /echo: hello/);
    const fields = {
      requestId: ok.requestId, target: 'agent/researcher', method: 'SendMessage', contextId: 'ctx-allowed', decision: 'allow', rule: 'planner-researches',
      traceId, user: undefined, chain: undefined, tool: undefined, status: 200,
    };
    expectFields(await recordOf('planner1', (r) => r.requestId === ok.requestId, 'the allowed call'), { ...fields, direction: 'outbound', caller: id('planner') });
    expectFields(await recordOf('researcher1', (r) => r.requestId === ok.requestId, 'the allowed call'), { ...fields, direction: 'inbound', caller: id('planner') });

    const list = await a2a(sidecars.planner, '/a2a/researcher', sendBody('ListTasks', {}));
    assert.match(list.body, /-32060/);
    expectFields(await recordOf('planner1', (r) => r.requestId === list.requestId, 'the denied method'), {
      requestId: list.requestId, direction: 'outbound', target: 'agent/researcher', method: 'ListTasks', decision: 'deny', rule: undefined, status: 403,
    });
    // GetTask is allowed: the agent answers (no such task); the task id is recorded on both sides.
    const get = await a2a(sidecars.planner, '/a2a/researcher', sendBody('tasks/get', { id: 'no-such-task' }));
    assert.doesNotMatch(get.body, /-32060/);
    for (const [instance, direction] of [['planner1', 'outbound'], ['researcher1', 'inbound']] as const) {
      const r = await recordOf(instance, (x) => x.requestId === get.requestId, 'GetTask');
      expectFields(r, { requestId: get.requestId, direction, target: 'agent/researcher', method: 'GetTask', taskId: 'no-such-task', decision: 'allow', rule: 'planner-researches' });
      assert.notEqual(r.status, 403);
    }
  });

  test('MCP: the allowed tool, another tool and a disallowed argument each leave their record with the tool', async () => {
    const cases = [
      { tool: 'word_count', text: 'two words', decision: 'allow', rule: 'planner-counts', status: 200 },
      { tool: 'shout', text: 'x', decision: 'deny', rule: undefined, status: 403 },
      // No rule allows it: planner-counts' argument constraint fails, and the record names that rule as the refusal does.
      { tool: 'word_count', text: 'DROP TABLE', decision: 'deny', rule: 'planner-counts', status: 403 },
    ];
    for (const c of cases) {
      const requestId = randomUUID();
      const client = await mcpClient(`${sidecars.planner.outbound}/mcp/stats`, requestId);
      const outcome = await client.callTool({ name: c.tool, arguments: { text: c.text } }).then(() => 'passed', (err: Error) => err.message);
      assert.equal(outcome === 'passed', c.decision === 'allow', outcome);
      const isCall = (r: AuditRecord) => r.requestId === requestId && r.method === 'tools/call';
      expectFields(await recordOf('planner1', isCall, `tools/call ${c.tool} ${c.text}`), {
        requestId, direction: 'outbound', caller: id('planner'), target: 'mcp/stats', method: 'tools/call', tool: c.tool, decision: c.decision, rule: c.rule, status: c.status, user: undefined,
      });
      if (c.decision === 'allow') {
        expectFields(await recordOf('researcher1', isCall, `tools/call ${c.tool}`), {
          requestId, direction: 'inbound', caller: id('planner'), target: 'mcp/stats', method: 'tools/call', tool: c.tool, decision: 'allow', rule: c.rule, status: 200,
        });
      } else {
        assert.equal(records().filter((r) => r.instance === 'researcher1' && isCall(r)).length, 0, 'refused at the caller');
      }
    }
  });

  test('end users: the confused deputy is denied for an intern and allowed for an analyst; user and chain are recorded', async () => {
    for (const user of [{ sub: `intern-${randomUUID()}`, role: 'intern' }, { sub: `analyst-${randomUUID()}`, role: 'analyst' }]) {
      const token = await idp.token(user);
      sent.push(token);
      const res = await a2a(sidecars.front, '/a2a/deputy/message:send', JSON.stringify({ message: userMessage('a b c') }), { authorization: `Bearer ${token}` });
      assert.equal(res.status, 200, res.body);
      const denied = user.role === 'intern';
      assert.match(res.body, denied ? /denied: .*interns-never-count-words/ : /allowed: .*word_count/);
      const base = { target: 'agent/deputy', method: 'SendMessage', decision: 'allow', rule: 'front-asks-deputy', user: user.sub, status: 200 };
      expectFields(await recordOf('front1', (r) => r.requestId === res.requestId, `${user.role}'s call`), { ...base, requestId: res.requestId, direction: 'outbound', caller: id('front'), chain: [id('front')] });
      expectFields(await recordOf('deputy1', (r) => r.requestId === res.requestId, `${user.role}'s call`), { ...base, requestId: res.requestId, direction: 'inbound', caller: id('front'), chain: [id('front')] });
      // The deputy's own tools/call, on the user's behalf (a new request of the deputy agent).
      const toolCall = (r: AuditRecord) => r.user === user.sub && r.method === 'tools/call';
      const out = await recordOf('deputy1', toolCall, `the deputy's tools/call for the ${user.role}`);
      expectFields(out, {
        direction: 'outbound', caller: id('deputy'), target: 'mcp/stats', tool: 'word_count', chain: [id('front'), id('deputy')],
        decision: denied ? 'deny' : 'allow', rule: denied ? 'interns-never-count-words' : 'deputy-counts-words', status: denied ? 403 : 200,
      });
      if (!denied) {
        expectFields(await recordOf('researcher1', toolCall, `the deputy's tools/call for the ${user.role}`), {
          requestId: out.requestId, direction: 'inbound', caller: id('deputy'), target: 'mcp/stats', tool: 'word_count',
          chain: [id('front'), id('deputy')], decision: 'allow', rule: 'deputy-counts-words', status: 200,
        });
      }
    }
    // A forged token is refused (401) before any decision; the record has neither user nor decision.
    const forged = idp.none({ sub: 'mallory', role: 'analyst' });
    sent.push(forged);
    const res = await a2a(sidecars.front, '/a2a/deputy/message:send', JSON.stringify({ message: userMessage('a') }), { authorization: `Bearer ${forged}` });
    assert.equal(res.status, 401);
    expectFields(await recordOf('front1', (r) => r.requestId === res.requestId, 'the forged token call'), {
      requestId: res.requestId, direction: 'outbound', user: undefined, decision: undefined, rule: undefined, status: 401,
    });
  });

  test('audit mode: the calling sidecar records would-deny and lets the call go; the enforcing receiver records deny', async () => {
    const res = await a2a(sidecars.auditor, '/a2a/researcher', sendBody('SendMessage', { message: userMessage('hello') }));
    assert.match(res.body, /-32060/, 'the receiving sidecar enforces');
    expectFields(await recordOf('auditor1', (r) => r.requestId === res.requestId, 'the would-deny call'), {
      requestId: res.requestId, direction: 'outbound', target: 'agent/researcher', method: 'SendMessage', decision: 'would-deny', rule: undefined, status: 403,
    });
    expectFields(await recordOf('researcher1', (r) => r.requestId === res.requestId, 'the would-deny call'), {
      requestId: res.requestId, direction: 'inbound', caller: id('auditor'), target: 'agent/researcher', method: 'SendMessage', decision: 'deny', rule: undefined, status: 403,
    });
  });

  test('no audit record and no sidecar log holds a secret the tests sent, nor any JWT', async () => {
    await Promise.allSettled(mcpClients.splice(0).map((c) => c.close())); // their DELETEs carry the session ids too
    assert.ok(sent.length >= 8, `${sent.length} secrets`);
    const audit = readdirSync(auditDir).map((f) => readFileSync(join(auditDir, f), 'utf8')).join('\n');
    assert.ok(audit.split('\n').filter(Boolean).length > 20, 'the audit files hold the records');
    const logs = Object.values(sidecars).map((s) => s.output()).join('\n');
    for (const secret of sent) {
      assert.ok(!audit.includes(secret), `the audit holds a secret the test sent: ${secret.slice(0, 12)}…`);
      assert.ok(!logs.includes(secret), `a sidecar log holds a secret the test sent: ${secret.slice(0, 12)}…`);
    }
    assert.doesNotMatch(audit, /eyJ[A-Za-z0-9_-]{8,}\./, 'no JWT (user token or signed chain) in the audit');
  });
});
