// The OTLP/HTTP JSON encoder byte for byte: every span it writes must be exactly JSON.stringify of the
// span object in the encoder's field order (so escaping, UTF-8 and numbers match the standard rules),
// across many spans, strings that need escaping, and strings longer than the encoder's chunks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallSpan } from './call-span.ts';
import { ChunkWriter } from './chunk-writer.ts';
import { OtlpRequest, WallClock, requestHead } from './otlp-json.ts';

const HEAD = requestHead({ 'service.name': 'svc "quoted" ü', 'service.instance.id': 'i-1' }, 'agentmesh');
const clock = new WallClock();

interface Fields {
  traceId?: string; spanId?: string; parentSpanId?: string; traceState?: string;
  direction?: 'outbound' | 'inbound'; method?: string; requestId?: string; target?: { kind: 'agent' | 'mcp'; name: string };
  caller?: string; taskId?: string; contextId?: string; tool?: string; decision?: string; error?: string;
  status?: number; retries?: number; hops?: number;
}

function spanOf(f: Fields): CallSpan {
  const span = new CallSpan({
    traceId: f.traceId ?? '0af7651916cd43dd8448eb211c80319c', spanId: f.spanId ?? 'b7ad6b7169203331',
    parentSpanId: f.parentSpanId, traceState: f.traceState,
  }, {}, 1234.5678, () => undefined);
  span.endedAt = 1240.000_001;
  span.direction = f.direction ?? 'outbound';
  span.method = f.method ?? 'SendMessage';
  span.requestId = f.requestId ?? 'f47ac10b-58cc-4372-a567-0e02b2c3d479';
  span.target = f.target;
  span.caller = f.caller;
  span.taskId = f.taskId;
  span.contextId = f.contextId;
  span.tool = f.tool;
  span.decision = f.decision;
  span.error = f.error;
  span.status = f.status ?? 200;
  span.retries = f.retries ?? 0;
  span.hops = f.hops ?? 0;
  return span;
}

const str = (key: string, value: string) => ({ key, value: { stringValue: value } });
const int = (key: string, value: number) => ({ key, value: { intValue: value } });

/** The span as OTLP JSON should carry it, in the encoder's field order; times taken from what was written (checked apart). */
function expected(span: CallSpan, times: { startTimeUnixNano: string; endTimeUnixNano: string }): unknown {
  const target = span.target ? `${span.target.kind}/${span.target.name}` : undefined;
  const attributes = [
    str('rpc.system', span.target?.kind === 'mcp' || span.method.startsWith('MCP') ? 'mcp' : 'a2a'),
    str('rpc.method', span.method),
    str('agentmesh.direction', span.direction),
    ...(target === undefined ? [] : [str('agentmesh.target', target)]),
    ...(span.caller === undefined ? [] : [str('agentmesh.caller', span.caller)]),
    str('agentmesh.request_id', span.requestId),
    int('agentmesh.retries', span.retries), int('agentmesh.hops', span.hops), int('http.response.status_code', span.status),
    ...(span.taskId === undefined ? [] : [str('a2a.task_id', span.taskId)]),
    ...(span.contextId === undefined ? [] : [str('a2a.context_id', span.contextId)]),
    ...(span.tool === undefined ? [] : [str('mcp.tool.name', span.tool)]),
    ...(span.decision === undefined ? [] : [str('agentmesh.policy.decision', span.decision)]),
    ...(span.error === undefined ? [] : [str('error.type', span.error)]),
  ];
  const failed = span.status === 0 || span.status >= 500 || span.error !== undefined;
  return {
    traceId: span.traceId, spanId: span.spanId,
    ...(span.parentSpanId === undefined ? {} : { parentSpanId: span.parentSpanId }),
    ...times,
    ...(span.traceState === undefined ? {} : { traceState: span.traceState }),
    name: target === undefined ? span.method : `${span.method} ${target}`,
    kind: span.direction === 'outbound' ? 3 : 2,
    attributes,
    status: failed ? { code: 2, message: span.error ?? (span.status === 0 ? 'cut' : `HTTP ${span.status}`) } : { code: 0 },
    flags: span.parentSpanId === undefined ? 0x101 : 0x301,
  };
}

/**
 * Encodes `spans` as one export request and checks it byte for byte against JSON.stringify; into
 * `out` when given (else once into 64 KB chunks and once into 100-byte chunks, so writes cross chunk ends).
 */
function check(spans: CallSpan[], out?: ChunkWriter): void {
  if (out === undefined) {
    check(spans, new ChunkWriter());
    check(spans, new ChunkWriter(100));
    return;
  }
  const request = new OtlpRequest(HEAD, clock, out);
  for (const span of spans) request.add(span);
  const { parts, bytes } = request.finish();
  const body = Buffer.concat(parts);
  assert.equal(body.length, bytes);
  const text = body.toString('utf8');
  const parsed = JSON.parse(text) as { resourceSpans: { scopeSpans: { spans: { startTimeUnixNano: string; endTimeUnixNano: string }[] }[] }[] };
  const written = parsed.resourceSpans[0]?.scopeSpans[0]?.spans ?? [];
  assert.equal(written.length, spans.length);
  const want = spans.map((span, i) => {
    const times = written[i] ?? { startTimeUnixNano: '', endTimeUnixNano: '' };
    // Nanoseconds since the epoch: performance.timeOrigin + the reading (a double is good to ~0.3 µs at this size).
    for (const [at, ns] of [[span.startedAt, times.startTimeUnixNano], [span.endedAt, times.endTimeUnixNano]] as const) {
      assert.match(ns, /^[1-9]\d{18}$/);
      const diff = BigInt(ns) - BigInt(Math.round((performance.timeOrigin + at) * 1e6));
      assert.ok(diff < 1000n && diff > -1000n, `${ns} is ${diff} ns off`);
    }
    return expected(span, { startTimeUnixNano: times.startTimeUnixNano, endTimeUnixNano: times.endTimeUnixNano });
  });
  const head = HEAD.toString('utf8');
  assert.equal(text, `${head}${want.map((s) => JSON.stringify(s)).join(',')}]}]}]}`);
  assert.deepEqual(JSON.parse(`${head}]}]}]}`), {
    resourceSpans: [{ resource: { attributes: [str('service.name', 'svc "quoted" ü'), str('service.instance.id', 'i-1')] }, scopeSpans: [{ scope: { name: 'agentmesh' }, spans: [] }] }],
  });
}

test('a root span and a child span with every attribute', () => {
  check([
    spanOf({ target: { kind: 'agent', name: 'echo' }, taskId: 'task-1', contextId: 'ctx-1', tool: 'lookup', decision: 'allow', retries: 1, hops: 2 }),
    spanOf({
      direction: 'inbound', parentSpanId: '00f067aa0ba902b7', traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
      caller: 'spiffe://t.test/agent/caller', target: { kind: 'agent', name: 'echo' }, status: 502, error: 'UPSTREAM_FAILED',
    }),
  ]);
});

test('status: cut, HTTP 5xx, a mesh error under 500, and MCP targets and methods', () => {
  check([
    spanOf({ status: 0 }),
    spanOf({ status: 503, method: 'tools/call', target: { kind: 'mcp', name: 'tools' } }),
    spanOf({ status: 403, error: 'POLICY_DENIED', decision: 'deny', method: 'MCP GET' }),
    spanOf({ status: 404 }),
  ]);
});

test('counts past the cached range, and odd status codes', () => {
  check([
    spanOf({ retries: 16, hops: 64, status: 1000 }),
    spanOf({ retries: 123_456, hops: 7, status: 299 }),
    spanOf({ retries: 3, hops: 63, status: 999 }),
  ]);
});

test('strings that need escaping or are not ASCII, in every string field', () => {
  const odd = 'a "quoted" \\ back\nslash\t\u0001 \u007f \u2028 ünï € 😀 lone \ud800 end';
  check([
    spanOf({
      traceState: 'k=v"with\\quote', method: `M ${odd}`, target: { kind: 'agent', name: odd }, caller: odd, taskId: odd,
      contextId: odd, tool: odd, decision: odd, error: odd, direction: 'inbound', parentSpanId: '00f067aa0ba902b7',
    }),
    spanOf({ taskId: '', contextId: '"', tool: 'ü', error: 'E' }),
  ]);
});

test('many spans and strings longer than a chunk', () => {
  const spans: CallSpan[] = [];
  for (let i = 0; i < 600; i++) spans.push(spanOf({ taskId: `task-${i}-${'x'.repeat(i)}`, ...(i % 7 === 0 ? { contextId: 'ü'.repeat(i) } : {}) }));
  spans.push(spanOf({ taskId: 'y'.repeat(200_000), contextId: '€'.repeat(70_000) }));
  spans.push(spanOf({ taskId: 'after' }));
  check(spans);
});

test('requests written one after another into one writer each get exactly their own spans', () => {
  for (const out of [new ChunkWriter(), new ChunkWriter(100)]) {
    check([spanOf({ taskId: 'first' })], out);
    check([spanOf({ taskId: 'second', contextId: 'ü'.repeat(90) }), spanOf({ status: 0 })], out);
    check([], out);
    check([spanOf({ taskId: 'fourth' })], out);
  }
});
