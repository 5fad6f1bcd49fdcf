// Two policy features on real processes, with the policy file in force before the workloads start:
// - limits.concurrency: the receiving sidecar refuses a caller's calls (and open streams) beyond its
//   limit to a target with 429 + Retry-After (RATE_LIMITED), and frees a slot when a call ends;
// - the federated `/mcp` carries the verified end user and chain to the next hop, so a user-scoped rule
//   lets user V list and call a tool through it and hides and denies it for user U.
// `agentmesh explain` (the same engine, on the same document) is checked to agree with each outcome.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { stringify } from 'yaml';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server';
import { message, serveAgent, textOf, type AgentServer } from '../sdk/index.ts';
import { parseArgs } from '../sidecar/cli/args.ts';
import { callFromFlags, explain, type Explanation } from '../sidecar/cli/policy.ts';
import { CompiledPolicy } from '../sidecar/policy/policy-engine.ts';
import { parsePolicy } from '../sidecar/policy/policy-schema.ts';
import { serveTestMcp, type TestMcpServer } from './fixtures/mcp-http-server.ts';
import { startTestIdp, type TestIdp } from './support/idp.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { rawRequest, type RawResponse } from './support/raw-http.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

const TD = 'mesh.test';
const id = (name: string) => `spiffe://${TD}/agent/${name}`;
const AUDIENCE = 'agentmesh-test';

/** An agent whose calls wait until the test lets them go; counts the calls in it. */
function heldExecutor() {
  let release: () => void = () => undefined;
  let gate = new Promise<void>((resolve) => { release = resolve; });
  const self = {
    inFlight: 0,
    releaseAll() { release(); gate = new Promise<void>((resolve) => { release = resolve; }); },
    executor: {
      async execute(ctx: RequestContext, bus: ExecutionEventBus) {
        self.inFlight++;
        try {
          if (textOf(ctx.userMessage.parts) === 'hold') await gate;
          bus.publish(AgentEvent.message(message('agent', `done: ${textOf(ctx.userMessage.parts)}`, { contextId: ctx.contextId })));
          bus.finished();
        } finally {
          self.inFlight--;
        }
      },
      async cancelTask() { /* held calls end when released */ },
    } satisfies AgentExecutor,
  };
  return self;
}

describe('policy limits.concurrency and the federated /mcp for end users', () => {
  let dir: string;
  let mesh: TestMesh;
  let idp: TestIdp;
  let mcp: TestMcpServer;
  let agent: AgentServer;
  let front: SidecarProcess;
  let enforced: CompiledPolicy;
  const held = heldExecutor();
  const mcpHeaders: IncomingHttpHeaders[] = [];

  function explained(flags: string[]): Explanation {
    return explain(enforced, callFromFlags(parseArgs(['explain', ...flags], new Set(['json']))));
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-users-limits-'));
    mesh = await createTestMesh({ backend: 'embedded', trustDomain: TD });
    idp = await startTestIdp(dir, AUDIENCE);
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, stringify({
      mode: 'enforce',
      default: 'deny',
      rules: [
        { name: 'front-calls-slow', from: { identity: id('front') }, to: { agent: 'slow' } },
        { name: 'analysts-count-words', from: { identity: id('front'), user: { claims: { role: 'analyst' } } }, to: { mcp: 'stats', tools: ['word_count'] } },
      ],
      limits: [{ name: 'two-at-a-time', from: { identity: id('front') }, to: { agent: 'slow' }, concurrency: 2 }],
    }));
    enforced = new CompiledPolicy(parsePolicy(readFileSync(policyFile, 'utf8'), policyFile), 1);
    const policy = { policy: { file: policyFile } };
    mcp = await serveTestMcp(['word_count', 'shout'], { onRequest: (headers) => mcpHeaders.push(headers) });
    agent = await serveAgent({ name: 'slow', executor: held.executor });
    await mesh.sidecar('slow', { ...policy, agent: { url: agent.url } });
    await mesh.sidecar('stats', { ...policy, mcp: { servers: [{ name: 'stats', url: mcp.url }] } });
    front = await mesh.sidecar('front', {
      ...policy,
      auth: { jwt: { issuer: idp.issuer, audiences: [AUDIENCE], jwksFile: idp.jwksFile, algorithms: ['ES256'], claims: ['role'] } },
    });
    await waitForAgent(front, 'slow');
    await waitFor('stats visible to front', async () => (await (await fetch(`${front.outbound}/registry/mcp`)).text()).includes('"stats"'), 15_000);
  });
  after(async () => {
    held.releaseAll();
    await mesh?.close();
    await agent?.close();
    await mcp?.close();
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function send(text: string, path = 'message:send'): Promise<RawResponse> {
    return rawRequest(front.outbound, {
      method: 'POST', path: `/a2a/slow/${path}`,
      headers: { host: new URL(front.outbound).host, 'content-type': 'application/json', 'a2a-version': '1.0' },
      body: JSON.stringify({ message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text }] } }),
    });
  }

  test('limits.concurrency: calls and open streams beyond the limit get 429 + Retry-After at the receiving sidecar; a finished call frees its slot', async () => {
    // One stream and one call held open: the two slots of front → slow.
    const stream = send('hold', 'message:stream');
    const call = send('hold');
    await waitFor('two calls in flight at the agent', () => held.inFlight === 2, 15_000);
    const refused = await send('one too many');
    assert.equal(refused.status, 429, refused.body);
    assert.equal(refused.headers['retry-after'], '1');
    assert.match(refused.body, /RATE_LIMITED/);
    assert.match(refused.body, /2 calls in flight to agent 'slow' \(limit 'two-at-a-time': concurrency 2\)/);
    assert.equal(held.inFlight, 2, 'the refused call never reached the agent');
    // explain agrees: the call is allowed, under the concurrency limit that refused the third.
    const said = explained(['--from', id('front'), '--to', 'agent:slow', '--method', 'SendMessage']);
    assert.deepEqual([said.allowed, said.rule, said.limits.map((l) => [l.name, l.concurrency])], [true, 'front-calls-slow', [['two-at-a-time', 2]]]);

    held.releaseAll();
    const [streamed, answered] = await Promise.all([stream, call]);
    assert.equal(streamed.status, 200, streamed.body);
    assert.match(streamed.body, /done: hold/);
    assert.equal(answered.status, 200, answered.body);
    // The slots are free again (released when each response closed).
    const again = await waitFor('a slot is free', async () => { const r = await send('again'); return r.status === 200 ? r : undefined; }, 5000);
    assert.match(again.body, /done: again/);
  });

  async function federated(user: { sub: string; role: string }): Promise<Client> {
    const client = new Client({ name: 'users-limits-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${front.outbound}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${await idp.token(user)}` } },
    }));
    return client;
  }

  test('federated /mcp: a user-scoped rule denies a tool for user U (hidden from its listing)', async () => {
    const client = await federated({ sub: 'u', role: 'intern' });
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.deepEqual(names, []);
      const err = await client.callTool({ name: 'stats__word_count', arguments: { text: 'a b' } }).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof McpError, String(err));
      assert.equal(err.code, -32060);
      assert.match(err.message, /tools\/call of tool 'word_count' on MCP server 'stats' to spiffe:\/\/mesh\.test\/agent\/front: no rule allows it/);
    } finally {
      await client.close();
    }
    assert.equal(explained(['--from', id('front'), '--to', 'mcp:stats', '--tool', 'word_count', '--user', JSON.stringify({ sub: 'u', role: 'intern' })]).allowed, false);
  });

  test('federated /mcp: the same rule lists and allows the tool for user V, and the MCP server receives V, never the token', async () => {
    const client = await federated({ sub: 'v', role: 'analyst' });
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.deepEqual(names, ['stats__word_count']);
      const seen = mcpHeaders.length;
      const result = await client.callTool({ name: 'stats__word_count', arguments: { text: 'a b' } });
      assert.equal(result.isError, undefined, JSON.stringify(result));
      assert.deepEqual(result.content, [{ type: 'text', text: 'word_count:a b' }]);
      const call = mcpHeaders.slice(seen).find((h) => h['x-agentmesh-user'] !== undefined);
      assert.ok(call, 'the tools/call reached the MCP server with the user header');
      assert.equal((JSON.parse(String(call['x-agentmesh-user'])) as { subject: string }).subject, 'v');
      assert.ok(call['x-agentmesh-chain'], 'with the chain token');
      assert.ok(mcpHeaders.every((h) => h.authorization === undefined), 'the bearer token never crosses a hop');
      // The tool the rule does not name stays denied for V too.
      const shout = await client.callTool({ name: 'stats__shout', arguments: {} }).then(() => undefined, (e: unknown) => e);
      assert.ok(shout instanceof McpError && shout.code === -32060, String(shout));
    } finally {
      await client.close();
    }
    const said = explained(['--from', id('front'), '--to', 'mcp:stats', '--tool', 'word_count', '--user', JSON.stringify({ sub: 'v', role: 'analyst' })]);
    assert.deepEqual([said.allowed, said.rule], [true, 'analysts-count-words']);
    assert.equal(explained(['--from', id('front'), '--to', 'mcp:stats', '--tool', 'shout', '--user', JSON.stringify({ sub: 'v', role: 'analyst' })]).allowed, false);
  });
});
