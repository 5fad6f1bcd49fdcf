// Seeing the mesh: a three-hop chain (a caller → agent b → MCP tool on a third sidecar) through three
// in-process sidecars, with a real OTLP/HTTP receiver, the access log and tap WebSockets on each admin
// listener; and a tap client that stops reading is dropped while calls go on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { AgentEvent, type AgentExecutor } from '@a2a-js/sdk/server';
import { connectMesh, meshContextOf, message, serveAgent, textOf } from '../sdk/index.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { serveTestMcp } from './fixtures/mcp-http-server.ts';
import { createTestPki } from './support/certs.ts';
import { startTestSidecar } from './support/in-process-sidecar.ts';
import { waitFor } from './support/wait.ts';

interface OtlpValue { stringValue?: string; intValue?: string | number; boolValue?: boolean }
interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes: { key: string; value: OtlpValue }[] }
interface Span extends OtlpSpan { service: string; attrs: Record<string, string | number | boolean | undefined> }
const SERVER = 2;
const CLIENT = 3;

/** An OTLP/HTTP JSON receiver: every span posted to /v1/traces, with its resource's instance id. */
async function startOtlpReceiver(): Promise<{ url: string; spans: Span[]; server: Server }> {
  const spans: Span[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      assert.match(String(req.headers['content-type']), /json/);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans: { resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: { spans: OtlpSpan[] }[] }[] };
      for (const rs of body.resourceSpans) {
        const service = String(rs.resource.attributes.find((a) => a.key === 'service.instance.id')?.value.stringValue);
        for (const ss of rs.scopeSpans) {
          for (const span of ss.spans) {
            const attrs: Span['attrs'] = {};
            for (const a of span.attributes) attrs[a.key] = a.value.stringValue ?? (a.value.intValue === undefined ? a.value.boolValue : Number(a.value.intValue));
            spans.push({ ...span, service, attrs });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans, server };
}

/** A pino logger whose JSON lines the test reads back. */
function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

/** A tap WebSocket on an admin listener, collecting the events it receives. */
async function openTap(admin: string, query = ''): Promise<{ events: Record<string, unknown>[]; ws: WebSocket }> {
  const ws = new WebSocket(`${admin.replace('http://', 'ws://')}/api/tap${query}`);
  const events: Record<string, unknown>[] = [];
  ws.on('message', (data) => events.push(JSON.parse(String(data)) as Record<string, unknown>));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return { events, ws };
}

/** Agent b: calls the `lookup` tool of MCP server `server` for every message, on behalf of that message's call. */
function toolCallerExecutor(meshUrl: () => string, server: string): AgentExecutor {
  return {
    async execute(ctx, bus) {
      const mcp = await connectMesh({ url: meshUrl() }).mcp(server, { context: meshContextOf(ctx) });
      try {
        const result = await mcp.callTool({ name: 'lookup', arguments: { text: textOf(ctx.userMessage.parts) } });
        const content = result.content as { type: string; text?: string }[];
        bus.publish(AgentEvent.message(message('agent', `b → ${content[0]?.text ?? ''}`, { contextId: ctx.contextId })));
      } finally {
        await mcp.close();
      }
      bus.finished();
    },
    async cancelTask() { /* nothing to cancel */ },
  };
}

/** A mesh CA, a shared registry directory and an OTLP receiver, all stopped when the test ends; tracing at ratio 1.0. */
async function tracedMesh(t: { after(fn: () => unknown): void }) {
  const pki = await createTestPki({ trustDomain: 'observe.test' });
  t.after(() => pki.close());
  const registryDir = mkdtempSync(join(tmpdir(), 'agentmesh-observe-'));
  t.after(() => rmSync(registryDir, { recursive: true, force: true }));
  const otlp = await startOtlpReceiver();
  t.after(() => new Promise((resolve) => { otlp.server.close(resolve); otlp.server.closeAllConnections(); }));
  return { pki, registryDir, otlp, telemetry: { enabled: true, endpoint: otlp.url, sampling: 1 } };
}

test('a three-hop chain shows as one trace, in the access log and on the tap of every sidecar', async (t) => {
  const unique = `o${process.pid}${Date.now().toString(36)}`;
  const { pki, registryDir, otlp, telemetry } = await tracedMesh(t);
  const log = { access: true };

  const tools = await serveTestMcp(['lookup']);
  t.after(() => tools.close());
  const mcpName = `tools-${unique}`;
  const cLog = capturedLogger();
  const c = await startTestSidecar({ name: 'c', pki, registryDir, logger: cLog.logger, config: { telemetry, log, instance: `c-${unique}`, mcp: { servers: [{ name: mcpName, url: tools.url }] } } });
  t.after(() => c.close());

  const bLog = capturedLogger();
  const bName = `b-${unique}`;
  let bOutbound = '';
  const agentB = await serveAgent({ name: bName, executor: toolCallerExecutor(() => bOutbound, mcpName) });
  t.after(() => agentB.close());
  const b = await startTestSidecar({ name: bName, pki, registryDir, logger: bLog.logger, config: { telemetry, log, instance: `b-${unique}`, agent: { url: agentB.url, name: bName } } });
  t.after(() => b.close());
  bOutbound = b.outbound;

  const aLog = capturedLogger();
  const a = await startTestSidecar({ name: 'a', pki, registryDir, logger: aLog.logger, config: { telemetry, log, instance: `a-${unique}` } });
  t.after(() => a.close());
  const taps = { a: await openTap(a.admin), b: await openTap(b.admin), c: await openTap(c.admin) };
  const filtered = await openTap(b.admin, `?method=${encodeURIComponent('tools/call')}`);
  t.after(() => { for (const tap of [...Object.values(taps), filtered]) tap.ws.terminate(); });

  const mesh = connectMesh({ url: a.outbound });
  await waitFor('agent b visible at a', async () => (await mesh.agents({ name: bName })).length === 1);
  await waitFor('the MCP server visible at b', async () => (await connectMesh({ url: b.outbound }).mcpServers()).some((s) => s.name === mcpName));

  const reply = await mesh.send(bName, 'hello', { contextId: `ctx-${unique}` });
  assert.equal('parts' in reply ? textOf(reply.parts) : '', 'b → lookup:hello');

  // The trace: a's client span → b's server span → b's client span (tools/call) → c's server span.
  const find = (service: string, kind: number, method: string) => otlp.spans.find((s) => s.service === service && s.kind === kind && s.attrs['rpc.method'] === method);
  const spans = await waitFor('the four spans of the chain', () => {
    const found = [
      find(`a-${unique}`, CLIENT, 'SendMessage'), find(`b-${unique}`, SERVER, 'SendMessage'),
      find(`b-${unique}`, CLIENT, 'tools/call'), find(`c-${unique}`, SERVER, 'tools/call'),
    ];
    return found.every((s) => s !== undefined) ? found as Span[] : undefined;
  }, 15_000).catch((err: unknown) => { console.error(JSON.stringify(otlp.spans.map((s) => [s.service, s.kind, s.name, s.attrs]))); throw err; });
  const [aClient, bServer, bClient, cServer] = spans as [Span, Span, Span, Span];
  assert.ok(/^[0-9a-f]{32}$/.test(aClient.traceId), 'a hex trace id');
  for (const span of spans) assert.equal(span.traceId, aClient.traceId, `${span.service} ${span.name} is in the one trace`);
  assert.equal(aClient.parentSpanId || undefined, undefined, 'the first hop starts the trace');
  assert.equal(bServer.parentSpanId, aClient.spanId);
  assert.equal(bClient.parentSpanId, bServer.spanId, 'the SDK carried the trace context from b\'s call to its tool call');
  assert.equal(cServer.parentSpanId, bClient.spanId);
  assert.equal(aClient.attrs['agentmesh.target'], `agent/${bName}`);
  assert.equal(bServer.attrs['agentmesh.caller'], a.identity);
  assert.equal(bServer.attrs['agentmesh.target'], `agent/${bName}`);
  assert.equal(bClient.attrs['mcp.tool.name'], 'lookup');
  assert.equal(cServer.attrs['mcp.tool.name'], 'lookup');
  assert.equal(cServer.attrs['agentmesh.caller'], b.identity);
  assert.equal(cServer.attrs['agentmesh.target'], `mcp/${mcpName}`);
  assert.equal(aClient.attrs['agentmesh.retries'], 0);
  assert.equal(aClient.attrs['http.response.status_code'], 200);
  assert.equal(aClient.attrs['agentmesh.request_id'], bServer.attrs['agentmesh.request_id'], 'both ends of a hop name the same request');
  assert.equal(aClient.attrs['a2a.context_id'], `ctx-${unique}`);
  assert.equal(bServer.attrs['a2a.context_id'], `ctx-${unique}`);
  // The tracer's counters on the admin listener: a's span went out, nothing was lost.
  const tracing = ((await (await fetch(`${a.admin}/api/state`)).json()) as { tracing: { exported: number; dropped: number } }).tracing;
  assert.ok(tracing.exported >= 1, `exported ${tracing.exported}`);
  assert.equal(tracing.dropped, 0);

  // The access log and the tap: every hop, each named by the request id both its ends share.
  const accessOf = (lines: Record<string, unknown>[]) => lines.filter((l) => l.log === 'access');
  const hop1 = { requestId: aClient.attrs['agentmesh.request_id'] };
  const hop2 = { requestId: cServer.attrs['agentmesh.request_id'] };
  const expectations: [string, Record<string, unknown>[], Record<string, unknown>[], string, string, unknown][] = [
    ['a', accessOf(aLog.lines), taps.a.events, 'outbound', 'SendMessage', hop1.requestId],
    ['b', accessOf(bLog.lines), taps.b.events, 'inbound', 'SendMessage', hop1.requestId],
    ['b', accessOf(bLog.lines), taps.b.events, 'outbound', 'tools/call', hop2.requestId],
    ['c', accessOf(cLog.lines), taps.c.events, 'inbound', 'tools/call', hop2.requestId],
  ];
  for (const [who, access, tapped, direction, method, requestId] of expectations) {
    const match = (e: Record<string, unknown>) => e.direction === direction && e.method === method && e.requestId === requestId;
    await waitFor(`${who} ${direction} ${method} on the tap`, () => tapped.some(match));
    const line = await waitFor(`${who} ${direction} ${method} in the access log`, () => access.find(match));
    assert.equal(line.status, 200);
    assert.equal(typeof line.durationMs, 'number');
    assert.equal(line.retries, 0);
    assert.equal(line.traceId, aClient.traceId);
    if (direction === 'inbound') assert.equal(line.caller, who === 'b' ? a.identity : b.identity);
  }
  assert.notEqual(hop1.requestId, hop2.requestId);
  // The filtered tap saw only tools/call events.
  await waitFor('the filtered tap saw the tool call', () => filtered.events.length > 0);
  assert.ok(filtered.events.every((e) => e.method === 'tools/call'), 'a method filter passes only that method');
});

test('a tap client that stops reading is dropped; the calls it watched go on', async (t) => {
  const pki = await createTestPki({ trustDomain: 'tapslow.test' });
  t.after(() => pki.close());
  const agent = await serveAgent({ name: `echo${process.pid}`, executor: echoExecutor() });
  t.after(() => agent.close());
  await using sidecar = await startTestSidecar({ name: `echo${process.pid}`, pki, config: { agent: { url: agent.url } } });
  const admin = new URL(sidecar.admin);

  // A WebSocket client that does the handshake and then never reads again.
  const socket: Socket = netConnect(Number(admin.port), admin.hostname);
  t.after(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('GET /api/tap HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
    + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  const head = await new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
  assert.match(head, /^HTTP\/1.1 101/);
  socket.pause();
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  let gone = false;
  void closed.then(() => { gone = true; });

  // A healthy tap client next to it keeps receiving.
  const healthy = await openTap(sidecar.admin);
  t.after(() => healthy.ws.terminate());

  const state = async () => (await (await fetch(`${sidecar.admin}/api/state`)).json()) as { tap: { clients: number; dropped: number } };
  assert.equal((await state()).tap.clients, 2);
  // Cheap calls (registry queries on the outbound listener), pipelined 500 at a time on one connection,
  // each with a long request id (a bigger tap event), until the stalled client is dropped.
  const out = new URL(sidecar.outbound);
  const caller: Socket = netConnect(Number(out.port), out.hostname);
  t.after(() => caller.destroy());
  await new Promise((resolve) => caller.once('connect', resolve));
  let answered = '';
  let waiting: (() => void) | undefined;
  caller.on('data', (d: Buffer) => { answered += d.toString('latin1'); waiting?.(); });
  const batch = async (n: number, round: number): Promise<string[]> => {
    answered = '';
    const pad = 'r'.repeat(100);
    caller.write(Array.from({ length: n }, (_, i) => `GET /registry/agents?name=none HTTP/1.1\r\nHost: 127.0.0.1\r\nx-agentmesh-request-id: ${pad}-${round}-${i}\r\n\r\n`).join(''));
    const count = () => answered.match(/HTTP\/1\.1 \d{3}/g) ?? [];
    while (count().length < n) await new Promise<void>((resolve) => { waiting = resolve; });
    return count();
  };
  let calls = 0;
  await waitFor('the stalled tap client dropped', async () => {
    const statuses = await batch(500, calls);
    assert.ok(statuses.every((line) => line === 'HTTP/1.1 200'), 'every call succeeds while the tap client stalls');
    calls += statuses.length;
    return (await state()).tap.dropped === 1 || undefined;
  }, 60_000, 0);
  await waitFor('the stalled client\'s connection closed by the sidecar', () => gone || (socket.resume(), false));
  assert.equal((await state()).tap.clients, 1, 'the healthy client stays');
  const before = healthy.events.length;
  await fetch(`${sidecar.outbound}/registry/agents`).then((r) => r.arrayBuffer());
  await waitFor('the healthy client still receives', () => healthy.events.length > before);
  assert.ok(calls > 0);
});

test('the tap refuses a bad filter and a plain GET with a clear error', async () => {
  await using sidecar = await startTestSidecar();
  const plain = await fetch(`${sidecar.admin}/api/tap`);
  assert.equal(plain.status, 400);
  assert.match(((await plain.json()) as { error: { message: string } }).error.message, /WebSocket/);
  const ws = new WebSocket(`${sidecar.admin.replace('http://', 'ws://')}/api/tap?agnt=x`);
  const status = await new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
  assert.equal(status, 400);
  ws.once('error', () => undefined);
  ws.terminate();
});

test('an error names its request id in the body; a base URL without its trailing slash gets a hint', async () => {
  await using sidecar = await startTestSidecar();
  const answer = await fetch(`${sidecar.outbound}/a2a/.well-known/agent-card.json`);
  assert.equal(answer.status, 404);
  const body = (await answer.json()) as { error: { message: string; details: { reason: string; metadata: Record<string, string> }[] } };
  assert.match(body.error.message, /trailing slash .*\/a2a\/\{agent\}\//);
  assert.equal(body.error.details[0]?.reason, 'ROUTE_NOT_FOUND');
  assert.equal(body.error.details[0]?.metadata.requestId, answer.headers.get('x-agentmesh-request-id'));
  assert.match(String(body.error.details[0]?.metadata.requestId), /^[0-9a-f-]{36}$/);
});

test('with tracing on, the sidecar owns the trace context: a caller\'s tracestate never outlives an invalid traceparent', async (t) => {
  const unique = `w${process.pid}${Date.now().toString(36)}`;
  const { pki, registryDir, telemetry } = await tracedMesh(t);
  const name = `keeper-${unique}`;
  /** The trace headers of every message the agent received (the card reads are not recorded). */
  const arrived: { traceparent: string | undefined; tracestate: string | undefined }[] = [];
  const agent = await serveAgent({
    name, executor: echoExecutor(),
    configure: (app) => app.use((req, _res, next) => {
      if (req.method === 'POST') arrived.push({ traceparent: req.headers.traceparent as string | undefined, tracestate: req.headers.tracestate as string | undefined });
      next();
    }),
  });
  t.after(() => agent.close());
  const b = await startTestSidecar({ name, pki, registryDir, config: { telemetry, instance: `b-${unique}`, agent: { url: agent.url, name } } });
  t.after(() => b.close());
  const a = await startTestSidecar({ name: 'a', pki, registryDir, config: { telemetry, instance: `a-${unique}` } });
  t.after(() => a.close());
  await waitFor('the agent visible at a', async () => (await connectMesh({ url: a.outbound }).agents({ name })).length === 1);

  const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const send = async (trace: Record<string, string>, id: string) => {
    const before = arrived.length;
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { kind: 'message', messageId: `${id}-${unique}`, role: 'user', parts: [{ kind: 'text', text: id }] } } });
    const res = await fetch(`${a.outbound}/a2a/${name}`, { method: 'POST', headers: { 'content-type': 'application/json', ...trace }, body });
    assert.equal(res.status, 200, await res.text());
    assert.equal(arrived.length, before + 1, `${id}: one message reached the agent`);
    return arrived[before] as { traceparent: string | undefined; tracestate: string | undefined };
  };

  // An invalid traceparent (upper-case hex) starts a new trace: the caller's tracestate belongs to no trace any more.
  const invalid = await send({ traceparent: `00-${TRACE.toUpperCase()}-00f067aa0ba902b7-01`, tracestate: 'congo=t61rcWkgMzE' }, 'invalid');
  assert.match(invalid.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  assert.ok(!invalid.traceparent?.includes(TRACE), 'a new trace id');
  assert.equal(invalid.tracestate, undefined, 'no tracestate without the trace it was for');

  // A valid traceparent continues the trace; a tracestate with no valid member is dropped, not passed on.
  const junk = await send({ traceparent: `00-${TRACE}-00f067aa0ba902b7-01`, tracestate: 'bad entry,=,UPPER=x' }, 'junk');
  assert.ok(junk.traceparent?.startsWith(`00-${TRACE}-`), 'the caller\'s trace continues');
  assert.equal(junk.tracestate, undefined);

  // And its valid members are carried on, in order.
  const kept = await send({ traceparent: `00-${TRACE}-00f067aa0ba902b7-01`, tracestate: 'congo=t61rcWkgMzE,bad entry,rojo=00f067aa0ba902b7' }, 'kept');
  assert.ok(kept.traceparent?.startsWith(`00-${TRACE}-`));
  assert.equal(kept.tracestate, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
});
