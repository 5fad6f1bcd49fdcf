// Mesh policy on real processes, shaped like Linkerd's policy tests: the policy is applied with
// `agentmesh policy apply` before the workloads start, each case's enforced outcome is asserted at the
// calling and the receiving sidecar, and `explain` (the same engine) is checked to agree with it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Agent, fetch as undiciFetch } from 'undici';
import { stringify } from 'yaml';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { parseArgs } from '../sidecar/cli/args.ts';
import { callFromFlags, explain } from '../sidecar/cli/policy.ts';
import { CompiledPolicy } from '../sidecar/policy/policy-engine.ts';
import { parsePolicy } from '../sidecar/policy/policy-schema.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { serveTestMcp, type TestMcpServer } from './fixtures/mcp-http-server.ts';
import type { IdentityFiles } from './support/certs.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { runCli, type SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

const TD = 'mesh.test';
const id = (name: string) => `spiffe://${TD}/agent/${name}`;

/** The policy of the test: planner may research (two methods) and count words (lower-case text only). */
function policyText(options: { mode?: 'enforce' | 'audit'; plannerResearches?: boolean } = {}): string {
  return stringify({
    mode: options.mode ?? 'enforce',
    default: 'deny',
    rules: [
      ...(options.plannerResearches === false ? [] : [{
        name: 'planner-researches', from: { identity: id('planner') }, to: { agent: 'researcher', methods: ['SendMessage', 'tasks/get'] },
      }]),
      { name: 'planner-counts', from: { identity: id('planner') }, to: { mcp: 'stats', tools: ['word_count'], arguments: { text: { pattern: '[a-z ]*' } } } },
    ],
  });
}

function send(method = 'SendMessage', params: Record<string, unknown> = { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'hello' }] } }): string {
  return JSON.stringify({ jsonrpc: '2.0', id: 1, method, params });
}

interface RpcAnswer { status: number; body: { result?: unknown; error?: { code: number; message: string; data?: Record<string, unknown> } } }

async function rpc(url: string, body: string, dispatcher?: Agent): Promise<RpcAnswer> {
  const res = await undiciFetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', 'a2a-version': '1.0' }, ...(dispatcher ? { dispatcher } : {}) });
  return { status: res.status, body: await res.json() as RpcAnswer['body'] };
}

/** An mTLS client holding `files`' certificate: calls a receiving sidecar directly, as a peer sidecar would. */
function peerClient(files: IdentityFiles): Agent {
  return new Agent({
    connect: {
      ca: readFileSync(files.bundle, 'utf8'), cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8'),
      rejectUnauthorized: true, checkServerIdentity: () => undefined,
    },
  });
}

async function policyState(sidecar: SidecarProcess): Promise<{ version: number | null; mode?: string }> {
  return (await (await fetch(`${sidecar.admin}/api/state`)).json() as { policy: { version: number | null; mode?: string } }).policy;
}

async function mcpClient(url: string): Promise<Client> {
  const client = new Client({ name: 'policy-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

/**
 * The JSON-RPC error of a refused tools/call. The sidecar answers it with HTTP 403 (JSON-RPC routes carry
 * the error's status), which the MCP client reports as a StreamableHTTPError holding the body.
 */
async function callToolError(client: Client, name: string, args: Record<string, unknown>): Promise<{ code: number; message: string; status: number | undefined }> {
  try {
    await client.callTool({ name, arguments: args });
  } catch (err) {
    if (err instanceof McpError) return { code: err.code, message: err.message, status: undefined };
    if (!(err instanceof StreamableHTTPError)) throw err;
    const body = JSON.parse(err.message.slice(err.message.indexOf('{'))) as { error: { code: number; message: string } };
    return { ...body.error, status: err.code };
  }
  assert.fail(`tools/call ${name} was not refused`);
}

describe('mesh policy on real sidecars (NATS)', () => {
  let mesh: TestMesh;
  let dir: string;
  let cliConfig: string;
  let agent: AgentServer;
  let stats: TestMcpServer;
  let researcher: SidecarProcess;
  let planner: SidecarProcess;
  let intruder: SidecarProcess;
  let intruderFiles: IdentityFiles;
  let plannerFiles: IdentityFiles;
  const clients: Client[] = [];
  /** The policy the sidecars enforce now, for explain. */
  let enforced: CompiledPolicy;

  /** `agentmesh policy apply` of `text`; returns the version it stored. */
  async function apply(text: string): Promise<number> {
    const file = join(dir, `policy-${randomUUID()}.yaml`);
    writeFileSync(file, text);
    const run = await runCli(['policy', 'apply', file, '--config', cliConfig, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const { version } = JSON.parse(run.stdout) as { version: number };
    enforced = new CompiledPolicy(parsePolicy(text, file), version);
    return version;
  }

  /** What `agentmesh explain` says for these flags under the enforced policy (the CLI's own parsing and engine). */
  function explained(flags: string[]): boolean {
    return explain(enforced, callFromFlags(parseArgs(['explain', ...flags], new Set(['json'])))).allowed;
  }

  before(async () => {
    mesh = await createTestMesh({ backend: 'nats', trustDomain: TD });
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-policy-'));
    cliConfig = join(dir, 'admin.yaml');
    writeFileSync(cliConfig, stringify({ registry: mesh.registry, identity: await mesh.pki.issue(`spiffe://${TD}/admin`) }));
    // The policy exists before any workload starts.
    assert.equal(await apply(policyText()), 1);
    agent = await serveAgent({ name: 'researcher', executor: echoExecutor() });
    stats = await serveTestMcp(['word_count', 'shout']);
    researcher = await mesh.sidecar('researcher', { agent: { url: agent.url }, mcp: { servers: [{ name: 'stats', url: stats.url }] } });
    planner = await mesh.sidecar('planner');
    intruder = await mesh.sidecar('intruder');
    intruderFiles = await mesh.pki.issue(id('intruder'));
    plannerFiles = await mesh.pki.issue(id('planner'));
    await waitForAgent(planner, 'researcher');
    await waitFor('stats visible to planner', async () => {
      const body = await (await fetch(`${planner.outbound}/registry/mcp`)).json() as { servers: { name: string }[] };
      return body.servers.some((s) => s.name === 'stats');
    }, 15_000);
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await mesh?.close();
    await agent?.close();
    await stats?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the sidecars report the version they run, and policy get prints it', async () => {
    for (const s of [researcher, planner, intruder]) assert.deepEqual(await policyState(s), { ...await policyState(s), version: 1, mode: 'enforce' });
    const metrics = await (await fetch(`${researcher.admin}/metrics`)).text();
    assert.match(metrics, /^agentmesh_policy_version 1$/m);
    const got = await runCli(['policy', 'get', '--config', cliConfig, '--json']);
    assert.equal(got.code, 0, got.stderr);
    assert.equal((JSON.parse(got.stdout) as { version: number; document: { default: string } }).document.default, 'deny');
  });

  test('default deny: a caller with no rule gets -32060 (JSON-RPC) and 403 (REST), at both sidecars', async () => {
    const out = await rpc(`${intruder.outbound}/a2a/researcher`, send());
    assert.equal(out.status, 200); // the agent-facing A2A JSON-RPC route answers errors with HTTP 200
    assert.equal(out.body.error?.code, -32060);
    assert.equal(out.body.error?.data?.code, 'POLICY_DENIED');
    assert.match(out.body.error?.message ?? '', new RegExp(`SendMessage on agent 'researcher' to ${id('intruder')}: no rule allows it`));
    const restRes = await fetch(`${intruder.outbound}/a2a/researcher/message:send`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
      body: JSON.stringify({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'hi' }] } }),
    });
    assert.equal(restRes.status, 403);
    const rest = await restRes.json() as { error: { status: string; details: { reason: string }[] } };
    assert.equal(rest.error.status, 'PERMISSION_DENIED');
    assert.equal(rest.error.details[0]?.reason, 'POLICY_DENIED');
    // The receiving sidecar decides on its own (authoritative), whatever the caller's sidecar did.
    const client = peerClient(intruderFiles);
    try {
      const direct = await rpc(`${researcher.inbound}/a2a/researcher`, send(), client);
      assert.equal(direct.status, 403);
      assert.equal(direct.body.error?.code, -32060);
    } finally {
      await client.close();
    }
    assert.equal(explained(['--from', id('intruder'), '--to', 'agent:researcher', '--method', 'SendMessage']), false);
    // The command itself, on the policy stored in NATS.
    const cli = await runCli(['explain', '--config', cliConfig, '--from', id('intruder'), '--to', 'agent:researcher', '--method', 'message/send', '--json']);
    assert.equal(cli.code, 0, cli.stderr);
    const said = JSON.parse(cli.stdout) as { decision: string; version: number; reason: string };
    assert.deepEqual([said.decision, said.version], ['deny', 1]);
    assert.match(said.reason, /no rule allows it/);
    // Discovery shows the intruder nothing it may not call.
    const agents = await (await fetch(`${intruder.outbound}/registry/agents`)).json() as { agents: unknown[] };
    assert.deepEqual(agents.agents, []);
  });

  test('allowed methods pass; another method of the same agent is denied; v0.3 names count as their v1.0 ones', async () => {
    const ok = await rpc(`${planner.outbound}/a2a/researcher`, send());
    assert.equal(ok.body.error, undefined, JSON.stringify(ok.body));
    assert.match(JSON.stringify(ok.body.result), /echo: hello/);
    assert.equal(explained(['--from', id('planner'), '--to', 'agent:researcher', '--method', 'SendMessage']), true);

    const list = await rpc(`${planner.outbound}/a2a/researcher`, send('ListTasks', {}));
    assert.equal(list.body.error?.code, -32060);
    assert.match(list.body.error?.message ?? '', /ListTasks on agent 'researcher'/);
    assert.equal(explained(['--from', id('planner'), '--to', 'agent:researcher', '--method', 'ListTasks']), false);
    const client = peerClient(plannerFiles);
    try {
      assert.equal((await rpc(`${researcher.inbound}/a2a/researcher`, send('ListTasks', {}), client)).body.error?.code, -32060);
    } finally {
      await client.close();
    }

    // tasks/get (v0.3) is GetTask: allowed, so the agent itself answers (no such task), not the policy.
    const get = await rpc(`${planner.outbound}/a2a/researcher`, send('GetTask', { id: 'no-such-task' }));
    assert.notEqual(get.body.error?.code, -32060);
    assert.equal(explained(['--from', id('planner'), '--to', 'agent:researcher', '--method', 'tasks/get']), true);
  });

  test('MCP: the allowed tool passes, another tool of the server and a disallowed argument are denied', async () => {
    const client = await mcpClient(`${planner.outbound}/mcp/stats`);
    clients.push(client);
    const counted = await client.callTool({ name: 'word_count', arguments: { text: 'two words' } });
    assert.match(JSON.stringify(counted), /word_count:two words/);
    assert.equal(explained(['--from', id('planner'), '--to', 'mcp:stats', '--tool', 'word_count', '--args', '{"text":"two words"}']), true);

    const shout = await callToolError(client, 'shout', { text: 'x' });
    assert.equal(shout.code, -32060);
    assert.equal(shout.status, 403);
    assert.match(shout.message, /tools\/call of tool 'shout' on MCP server 'stats'/);
    assert.equal(explained(['--from', id('planner'), '--to', 'mcp:stats', '--tool', 'shout']), false);

    const injected = await callToolError(client, 'word_count', { text: 'DROP TABLE' });
    assert.equal(injected.code, -32060);
    assert.match(injected.message, /argument 'text' does not match the allowed pattern \(rule 'planner-counts'\)/);
    assert.equal(explained(['--from', id('planner'), '--to', 'mcp:stats', '--tool', 'word_count', '--args', '{"text":"DROP TABLE"}']), false);

    // A JSON-RPC batch could hide a tools/call: only a rule without method or tool limits allows one.
    const batch = await fetch(`${planner.outbound}/mcp/stats`, {
      method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify([{ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'shout', arguments: {} } }]),
    });
    assert.equal(batch.status, 403);
    assert.equal((await batch.json() as { error: { code: number } }).error.code, -32060);
  });

  test('tools/list through /mcp shows only the tools the caller may call', async () => {
    const client = await mcpClient(`${planner.outbound}/mcp`);
    clients.push(client);
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name), ['stats__word_count']);
    const viaFederation = await client.callTool({ name: 'stats__word_count', arguments: { text: 'via the federation' } });
    assert.match(JSON.stringify(viaFederation), /word_count:via the federation/);
    const refused = await callToolError(client, 'stats__word_count', { text: 'NOT LOWER CASE' });
    assert.equal(refused.code, -32060);
    assert.match(refused.message, /argument 'text' does not match/);
    // The federated session survives a refused call.
    assert.match(JSON.stringify(await client.callTool({ name: 'stats__word_count', arguments: { text: 'still here' } })), /word_count:still here/);
    const other = await mcpClient(`${intruder.outbound}/mcp`);
    clients.push(other);
    assert.deepEqual((await other.listTools()).tools, []);
    const servers = await (await fetch(`${planner.outbound}/registry/mcp`)).json() as { servers: { name: string; tools: { name: string }[] }[] };
    assert.deepEqual(servers.servers.find((s) => s.name === 'stats')?.tools.map((t) => t.name), ['word_count']);
  });

  test('audit mode lets a would-be denial through and records it', async () => {
    const version = await apply(policyText({ mode: 'audit' }));
    await waitFor('audit policy on every sidecar', async () => {
      const states = await Promise.all([researcher, planner, intruder].map(policyState));
      return states.every((s) => s.version === version && s.mode === 'audit');
    }, 5000);
    const out = await rpc(`${intruder.outbound}/a2a/researcher`, send());
    assert.equal(out.body.error, undefined, JSON.stringify(out.body));
    assert.match(JSON.stringify(out.body.result), /echo: hello/);
    const explainedAudit = explain(enforced, callFromFlags(parseArgs(['explain', '--from', id('intruder'), '--to', 'agent:researcher'], new Set())));
    assert.deepEqual([explainedAudit.allowed, explainedAudit.mode], [false, 'audit']);
    for (const [sidecar, direction] of [[researcher, 'inbound'], [intruder, 'outbound']] as const) {
      const metrics = await (await fetch(`${sidecar.admin}/metrics`)).text();
      const m = new RegExp(`^agentmesh_policy_decisions_total\\{direction="${direction}",decision="audit_deny"\\} (\\d+)$`, 'm').exec(metrics);
      assert.ok(Number(m?.[1]) >= 1, `${direction} audit_deny counted:\n${metrics.split('\n').filter((l) => l.includes('policy')).join('\n')}`);
    }
    // The audit stream holds the would-be denial, with the rule (none) and the caller.
    await waitFor('a would-deny record in the audit stream', async () => {
      const tail = await runCli(['audit', 'tail', '--config', cliConfig, '--json']);
      return tail.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
        .some((r) => r.decision === 'would-deny' && r.direction === 'inbound' && r.caller === id('intruder') && r.target === 'agent/researcher');
    }, 15_000, 250);
    // The log line travels through the child's stdout pipe, which may lag the HTTP answer.
    await waitFor('the audit log line', () => researcher.output().includes('policy audit: the call would be denied'), 5000);
  });

  test('a change from allow to deny applied with policy apply takes effect on all sidecars within 5 s, under load', async (t) => {
    await apply(policyText());
    await waitFor('enforce again', async () => (await Promise.all([researcher, planner].map(policyState))).every((s) => s.mode === 'enforce'), 5000);
    let stop = false;
    const outcomes: { at: number; denied: boolean }[] = [];
    const load = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const at = Date.now();
        const r = await rpc(`${planner.outbound}/a2a/researcher`, send());
        outcomes.push({ at, denied: r.body.error?.code === -32060 });
      }
    });
    await waitFor('calls flowing', () => outcomes.filter((o) => !o.denied).length >= 20, 10_000);
    const version = await apply(policyText({ plannerResearches: false }));
    const appliedAt = Date.now(); // the command stored the version just before it exited
    let settled = Infinity;
    try {
      await waitFor('the deny policy on every sidecar', async () => {
        const states = await Promise.all([researcher, planner, intruder].map(policyState));
        return states.every((s) => s.version === version);
      }, 5000);
      settled = Date.now();
      assert.ok(settled - appliedAt <= 5000, `took ${settled - appliedAt} ms`);
      t.diagnostic(`the new version ran on all three sidecars ${settled - appliedAt} ms after policy apply returned`);
      await waitFor('calls after the change', () => outcomes.filter((o) => o.at > settled).length >= 20, 10_000);
    } finally {
      stop = true;
      await Promise.all(load);
    }
    const later = outcomes.filter((o) => o.at >= settled);
    assert.ok(later.length > 0 && later.every((o) => o.denied), 'every call started once all sidecars run the new version is denied');
    // The receiving sidecar denies too (not only the caller's).
    const client = peerClient(plannerFiles);
    try {
      assert.equal((await rpc(`${researcher.inbound}/a2a/researcher`, send(), client)).body.error?.code, -32060);
    } finally {
      await client.close();
    }
    assert.equal(explained(['--from', id('planner'), '--to', 'agent:researcher']), false);
  });

  // Last: it takes NATS away.
  test('NATS down: the last policy stays in force', async () => {
    await mesh.nats?.stop();
    await waitFor('registry unreachable', async () => (await fetch(`${researcher.admin}/readyz`)).status === 503, 15_000);
    for (const s of [researcher, planner, intruder]) assert.equal((await policyState(s)).version, enforced.version);
    const denied = await rpc(`${planner.outbound}/a2a/researcher`, send());
    assert.equal(denied.body.error?.code, -32060);
    const client = peerClient(intruderFiles);
    try {
      assert.equal((await rpc(`${researcher.inbound}/a2a/researcher`, send(), client)).status, 403);
    } finally {
      await client.close();
    }
    // What the last policy allows still works (the registry view is cached too).
    const mcp = await mcpClient(`${planner.outbound}/mcp/stats`);
    clients.push(mcp);
    assert.match(JSON.stringify(await mcp.callTool({ name: 'word_count', arguments: { text: 'still counting' } })), /word_count:still counting/);
  });
});
