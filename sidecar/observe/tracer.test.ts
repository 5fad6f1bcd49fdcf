// The tracer against a real OTLP/HTTP receiver on port 0: the headers each call passes on, the spans
// that arrive (ids, parent, kind, name, attributes, status, times, flags, resource), sampling, escaping,
// and the exporter's batches, retries, drops and close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, IncomingMessage, type ServerResponse } from 'node:http';
import { Socket, type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { waitFor } from '../../test/support/wait.ts';
import { RequestContext, type Direction } from '../request-context.ts';
import type { CallTracer } from './call-trace.ts';
import { otlpHeadersFromEnv } from './span-exporter.ts';
import { createTracer, type TracerOptions } from './tracer.ts';

const log = pino({ level: 'silent' });
type Value = { stringValue?: string; intValue?: number };
interface Span {
  traceId: string; spanId: string; parentSpanId?: string; traceState?: string; name: string; kind: number;
  startTimeUnixNano: string; endTimeUnixNano: string; attributes: { key: string; value: Value }[];
  status: { code: number; message?: string }; flags: number;
}
interface Export { resourceSpans: { resource: { attributes: { key: string; value: Value }[] }; scopeSpans: { scope: { name: string }; spans: Span[] }[] }[] }

/** An OTLP/HTTP receiver: answers each export with the next of `statuses` (then 200), or holds it when `hold`. */
async function receiver(t: { after(fn: () => unknown): void }, options: { statuses?: number[]; hold?: boolean; retryAfter?: string } = {}) {
  const exports: Export[] = [];
  const held: ServerResponse[] = [];
  let requests = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests++;
      assert.equal(req.headers['content-type'], 'application/json');
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Export;
      if (options.hold) { held.push(res); return; }
      const status = options.statuses?.shift() ?? 200;
      if (status === 200) exports.push(body);
      res.writeHead(status, status === 503 ? { 'retry-after': options.retryAfter ?? '0' } : {}).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { for (const res of held) res.destroy(); server.close(resolve); server.closeAllConnections(); }));
  const spans = () => exports.flatMap((e) => e.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, exports, spans, requests: () => requests };
}

function tracerFor(url: string, options: Partial<TracerOptions> = {}): CallTracer {
  return createTracer({ endpoint: url, sampling: 1, serviceName: 'agentmesh-sidecar', resource: { 'service.instance.id': 'i-1', 'agentmesh.identity': 'spiffe://t.test/agent/a' }, log, ...options });
}

/** One call through the tracer: begin with `headers`, the context filled in by `fill`, end with `status`. */
function call(tracer: CallTracer, direction: Direction, headers: Record<string, string>, status = 200, error?: string, fill?: (ctx: RequestContext) => void) {
  const req = new IncomingMessage(new Socket());
  req.headers = headers;
  const ctx = new RequestContext(direction, req, log);
  const trace = tracer.begin(ctx, headers);
  ctx.trace = trace;
  ctx.method = 'SendMessage';
  ctx.target = { kind: 'agent', name: 'echo' };
  fill?.(ctx);
  trace.end(ctx, status, error);
  return { ctx, trace };
}

const attrs = (span: Span) => Object.fromEntries(span.attributes.map((a) => [a.key, a.value.stringValue ?? a.value.intValue]));
const TRACE = '0af7651916cd43dd8448eb211c80319c';
const PARENT = 'b7ad6b7169203331';

test('a call without traceparent starts a trace; its client span arrives with every attribute', async (t) => {
  const otlp = await receiver(t);
  const tracer = tracerFor(otlp.url);
  const before = BigInt(Date.now() - 1) * 1_000_000n;
  const { ctx, trace } = call(tracer, 'outbound', {}, 200, undefined, (c) => {
    c.taskId = 'task-1'; c.contextId = 'ctx-1'; c.tool = 'lookup'; c.retries = 1; c.hops = 2; c.decision = { allowed: true };
  });
  await tracer.close();
  const after = BigInt(Date.now() + 1) * 1_000_000n;
  const [traceparent, traceId, spanId, flags] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(\d\d)$/.exec(trace.headers.traceparent ?? '') ?? [];
  assert.ok(traceparent, trace.headers.traceparent);
  assert.equal(flags, '01');
  assert.equal(trace.traceId, traceId);
  assert.equal(trace.headers.tracestate, undefined);

  assert.equal(otlp.exports.length, 1);
  const resource = otlp.exports[0]?.resourceSpans[0];
  assert.deepEqual(Object.fromEntries(resource?.resource.attributes.map((a) => [a.key, a.value.stringValue]) ?? []),
    { 'service.name': 'agentmesh-sidecar', 'service.instance.id': 'i-1', 'agentmesh.identity': 'spiffe://t.test/agent/a' });
  assert.equal(resource?.scopeSpans[0]?.scope.name, 'agentmesh');
  const [span] = otlp.spans();
  assert.ok(span);
  assert.equal(span.traceId, traceId);
  assert.equal(span.spanId, spanId);
  assert.equal(span.parentSpanId, undefined);
  assert.equal(span.traceState, undefined);
  assert.equal(span.name, 'SendMessage agent/echo');
  assert.equal(span.kind, 3, 'client');
  assert.deepEqual(attrs(span), {
    'rpc.system': 'a2a', 'rpc.method': 'SendMessage', 'agentmesh.request_id': ctx.requestId, 'agentmesh.direction': 'outbound',
    'agentmesh.retries': 1, 'agentmesh.hops': 2, 'http.response.status_code': 200, 'agentmesh.target': 'agent/echo',
    'a2a.task_id': 'task-1', 'a2a.context_id': 'ctx-1', 'mcp.tool.name': 'lookup', 'agentmesh.policy.decision': 'allow',
  });
  assert.deepEqual(span.status, { code: 0 });
  assert.equal(span.flags, 0x101, 'sampled; the parent is known not to be remote');
  const start = BigInt(span.startTimeUnixNano);
  const end = BigInt(span.endTimeUnixNano);
  assert.ok(before <= start && start <= end && end <= after, `${before} <= ${start} <= ${end} <= ${after}`);
  assert.deepEqual(tracer.stats(), { queued: 0, exported: 1, dropped: 0, failedExports: 0 });
});

test('a sampled caller is continued: a server span under its span, tracestate carried, failures as error status', async (t) => {
  const otlp = await receiver(t);
  const tracer = tracerFor(otlp.url, { sampling: 0 });
  const incoming = { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'congo=t61rcWkgMzE,bad entry,rojo=00f067aa0ba902b7' };
  const failed = call(tracer, 'inbound', incoming, 502, 'UPSTREAM_FAILED', (c) => { c.caller = 'spiffe://t.test/agent/caller'; });
  const cut = call(tracer, 'inbound', incoming, 0);
  const http = call(tracer, 'inbound', incoming, 503, undefined, (c) => { c.method = 'tools/call'; c.target = { kind: 'mcp', name: 'tools' }; });
  await tracer.close();
  const [, traceId, spanId, flags] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(\d\d)$/.exec(failed.trace.headers.traceparent ?? '') ?? [];
  assert.equal(traceId, TRACE);
  assert.notEqual(spanId, PARENT);
  assert.equal(flags, '01', 'the caller\'s sampled flag wins over ratio 0');
  assert.equal(failed.trace.headers.tracestate, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');

  const spans = otlp.spans();
  assert.equal(spans.length, 3);
  const [a, b, c] = spans as [Span, Span, Span];
  assert.equal(a.spanId, spanId);
  assert.equal(a.traceId, TRACE);
  assert.equal(a.parentSpanId, PARENT);
  assert.equal(a.traceState, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
  assert.equal(a.kind, 2, 'server');
  assert.equal(a.flags, 0x301, 'sampled, with a remote parent');
  assert.deepEqual(a.status, { code: 2, message: 'UPSTREAM_FAILED' });
  assert.equal(attrs(a)['error.type'], 'UPSTREAM_FAILED');
  assert.equal(attrs(a)['agentmesh.caller'], 'spiffe://t.test/agent/caller');
  assert.equal(attrs(a)['agentmesh.direction'], 'inbound');
  assert.deepEqual(b.status, { code: 2, message: 'cut' });
  assert.equal(attrs(b)['http.response.status_code'], 0);
  assert.deepEqual(c.status, { code: 2, message: 'HTTP 503' });
  assert.equal(c.name, 'tools/call mcp/tools');
  assert.equal(attrs(c)['rpc.system'], 'mcp');
  assert.equal(new Set(spans.map((s) => s.spanId)).size, 3, 'a span id per call');
  void cut; void http;
});

test('unsampled: ratio 0 or a caller\'s 00 flag passes ids on with flags 00 and exports nothing', async (t) => {
  const otlp = await receiver(t);
  const tracer = tracerFor(otlp.url, { sampling: 0 });
  const root = call(tracer, 'outbound', {});
  const child = call(tracer, 'inbound', { traceparent: `00-${TRACE}-${PARENT}-00` });
  const bad = call(tracer, 'outbound', { traceparent: `00-${TRACE}-${PARENT}-01-extra` });
  await tracer.close();
  assert.match(root.trace.headers.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  assert.match(child.trace.headers.traceparent ?? '', new RegExp(`^00-${TRACE}-(?!${PARENT})[0-9a-f]{16}-00$`));
  assert.doesNotMatch(bad.trace.headers.traceparent ?? '', new RegExp(TRACE), 'a malformed traceparent starts a new trace');
  assert.equal(otlp.requests(), 0);
  assert.deepEqual(tracer.stats(), { queued: 0, exported: 0, dropped: 0, failedExports: 0 });
});

test('strings that need escaping arrive intact; a span ends once', async (t) => {
  const otlp = await receiver(t);
  const tracer = tracerFor(otlp.url);
  const odd = 'a "quoted" \\ back\nslash\t\u0001 \u2028 ünï € 😀 lone \ud800 end';
  const { ctx, trace } = call(tracer, 'inbound', {}, 200, undefined, (c) => {
    c.contextId = odd; c.taskId = odd; c.method = `M ${odd}`; c.target = { kind: 'agent', name: odd }; c.caller = odd;
  });
  trace.end(ctx, 500, 'AGAIN');
  await tracer.close();
  const spans = otlp.spans();
  assert.equal(spans.length, 1);
  const span = spans[0] as Span;
  assert.equal(span.name, `M ${odd} agent/${odd}`);
  for (const key of ['a2a.context_id', 'a2a.task_id', 'agentmesh.caller']) assert.equal(attrs(span)[key], odd, key);
  assert.equal(attrs(span)['agentmesh.target'], `agent/${odd}`);
  assert.equal(attrs(span)['http.response.status_code'], 200, 'the first end counts');
});

test('exports go out in batches of at most batchSize, each span once, without close', async (t) => {
  const otlp = await receiver(t);
  const tracer = tracerFor(otlp.url, { export: { batchSize: 10, sliceSize: 4, delayMs: 20 } });
  t.after(() => tracer.close());
  for (let i = 0; i < 45; i++) call(tracer, 'outbound', {}, 200, undefined, (c) => { c.taskId = `t${i}`; });
  await waitFor('45 spans exported', () => tracer.stats().exported === 45);
  const ids = otlp.spans().map((s) => attrs(s)['a2a.task_id']);
  assert.deepEqual(ids, Array.from({ length: 45 }, (_, i) => `t${i}`), 'every span once, in order');
  assert.ok(otlp.exports.every((e) => (e.resourceSpans[0]?.scopeSpans[0]?.spans.length ?? 0) <= 10));
  assert.ok(otlp.exports.length >= 5);
  assert.equal(tracer.stats().queued, 0);
});

test('a busy collector (503, Retry-After) is retried; one that refuses (400) loses the batch, counted', async (t) => {
  const otlp = await receiver(t, { statuses: [503, 200, 400] });
  const tracer = tracerFor(otlp.url, { export: { delayMs: 1 } });
  t.after(() => tracer.close());
  call(tracer, 'outbound', {});
  await waitFor('the retried batch exported', () => tracer.stats().exported === 1);
  assert.equal(otlp.requests(), 2);
  call(tracer, 'outbound', {});
  await waitFor('the refused batch dropped', () => tracer.stats().dropped === 1);
  assert.equal(otlp.requests(), 3, 'a 400 is not retried');
  assert.deepEqual(tracer.stats(), { queued: 0, exported: 1, dropped: 1, failedExports: 1 });
});

test('the queue is bounded: past maxQueue spans are dropped and counted; close gives up on a stuck collector', async (t) => {
  const otlp = await receiver(t, { hold: true });
  const tracer = tracerFor(otlp.url, { export: { maxQueue: 5, batchSize: 2, sliceSize: 1, closeTimeoutMs: 200 } });
  for (let i = 0; i < 20; i++) call(tracer, 'outbound', {});
  assert.deepEqual(tracer.stats(), { queued: 5, exported: 0, dropped: 15, failedExports: 0 });
  await tracer.close();
  await tracer.close();
  assert.ok(otlp.requests() >= 1, 'the first batch reached the collector, which never answered');
  const stats = tracer.stats();
  assert.equal(stats.exported, 0);
  assert.equal(stats.dropped, 20, 'everything unsent at the close deadline is counted');
  assert.equal(stats.queued, 0);
  call(tracer, 'outbound', {});
  assert.equal(tracer.stats().dropped, 21, 'a span after close is dropped');
});

test('close does not sit out a retry\'s wait: the batch goes again at once', async (t) => {
  const otlp = await receiver(t, { statuses: [503], retryAfter: '30' });
  const tracer = tracerFor(otlp.url, { export: { delayMs: 1 } });
  call(tracer, 'outbound', {});
  await waitFor('the first try answered 503', () => otlp.requests() === 1);
  await tracer.close();
  assert.equal(otlp.requests(), 2);
  assert.deepEqual(tracer.stats(), { queued: 0, exported: 1, dropped: 0, failedExports: 0 });
});

test('a collector that trickles its answer is cut off at the export time limit, counted', async (t) => {
  const timers: NodeJS.Timeout[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      timers.push(setInterval(() => res.write(' '), 50)); // a byte every 50 ms, never the end
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  t.after(() => { for (const timer of timers) clearInterval(timer); server.closeAllConnections(); server.close(); });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`;
  const tracer = tracerFor(url, { export: { delayMs: 1, timeoutMs: 300, maxAttempts: 1 } });
  call(tracer, 'outbound', {});
  await waitFor('the trickled export counted as failed', () => tracer.stats().failedExports === 1, 5000);
  await tracer.close();
});

test('OTEL_EXPORTER_OTLP_(TRACES_)HEADERS are sent with every export; bad pairs are skipped', async (t) => {
  assert.deepEqual(otlpHeadersFromEnv({ OTEL_EXPORTER_OTLP_HEADERS: 'api-key=s%3Dcret, x-tenant = a ,=nokey,novalue,content-length=9,bad key=1,crlf=a%0D%0Ab' }),
    { 'api-key': 's=cret', 'x-tenant': 'a' });
  assert.deepEqual(otlpHeadersFromEnv({ OTEL_EXPORTER_OTLP_HEADERS: 'a=1', OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'b=2' }), { b: '2' });
  const seen: string[] = [];
  const server = createServer((req, res) => { seen.push(String(req.headers['api-key'])); req.resume(); req.on('end', () => res.end('{}')); });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  t.after(() => { server.closeAllConnections(); server.close(); });
  const previous = process.env.OTEL_EXPORTER_OTLP_TRACES_HEADERS;
  process.env.OTEL_EXPORTER_OTLP_TRACES_HEADERS = 'api-key=k-123';
  try {
    const tracer = tracerFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, { export: { delayMs: 1 } });
    call(tracer, 'outbound', {});
    await tracer.close();
  } finally {
    if (previous === undefined) delete process.env.OTEL_EXPORTER_OTLP_TRACES_HEADERS;
    else process.env.OTEL_EXPORTER_OTLP_TRACES_HEADERS = previous;
  }
  assert.deepEqual(seen, ['k-123']);
});
