// W3C trace context: traceparent and tracestate as the spec (and OpenTelemetry's propagator) read them,
// span and trace ids from the pool, and the ratio sampler's decisions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdPool, parseTraceparent, parseTracestate, ratioSampler } from './trace-context.ts';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const SPAN = 'b7ad6b7169203331';

test('traceparent: the version-00 form, sampled flag from bit 0', () => {
  assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-01`), { traceId: TRACE, spanId: SPAN, sampled: true });
  assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-00`), { traceId: TRACE, spanId: SPAN, sampled: false });
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-03`)?.sampled, true);
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-0b`)?.sampled, true);
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-fe`)?.sampled, false);
  assert.deepEqual(parseTraceparent([`00-${TRACE}-${SPAN}-01`, 'junk']), { traceId: TRACE, spanId: SPAN, sampled: true }, 'the first of several');
});

test('traceparent: malformed, invalid ids and version ff name no parent', () => {
  for (const bad of [
    undefined, '', 'garbage', `00-${TRACE}-${SPAN}`, `00-${TRACE.toUpperCase()}-${SPAN}-01`, `00-${TRACE}-${SPAN}-0g`,
    `00-${'0'.repeat(32)}-${SPAN}-01`, `00-${TRACE}-${'0'.repeat(16)}-01`, `ff-${TRACE}-${SPAN}-01`,
    `00_${TRACE}-${SPAN}-01`, `00-${TRACE}_${SPAN}-01`, `00-${TRACE}-${SPAN}_01`, `00-${TRACE.slice(1)}x-${SPAN}-01`,
    `00-${TRACE}-${SPAN}-01-extra`, '0'.repeat(55),
  ]) assert.equal(parseTraceparent(bad), undefined, String(bad));
});

test('traceparent: a later version may add fields; one blank at each end is tolerated', () => {
  assert.deepEqual(parseTraceparent(`01-${TRACE}-${SPAN}-01-whatever`), { traceId: TRACE, spanId: SPAN, sampled: true });
  assert.deepEqual(parseTraceparent(` 00-${TRACE}-${SPAN}-00 `), { traceId: TRACE, spanId: SPAN, sampled: false });
});

test('tracestate: valid members kept in order, invalid ones dropped, several headers joined', () => {
  assert.equal(parseTracestate('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7'), 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
  assert.equal(parseTracestate(' congo=a , bad , Upper=x, tenant@vendor=v,k=,x=a=b,y=ok '), 'congo=a,tenant@vendor=v,y=ok');
  assert.equal(parseTracestate(['a=1', 'b=2']), 'a=1,b=2');
  assert.equal(parseTracestate('a=1,b=2,a=3'), 'a=3,b=2', 'a repeated key keeps its place and takes the last value');
  assert.equal(parseTracestate('nothing valid'), undefined);
  assert.equal(parseTracestate(''), undefined);
  assert.equal(parseTracestate(undefined), undefined);
});

test('tracestate: at most 32 members and 512 characters', () => {
  const many = Array.from({ length: 40 }, (_, i) => `k${i}=v${i}`).join(',');
  const kept = parseTracestate(many)?.split(',') ?? [];
  assert.equal(kept.length, 32);
  assert.equal(kept[0], 'k0=v0');
  assert.equal(kept[31], 'k31=v31');
  const long = Array.from({ length: 5 }, (_, i) => `k${i}=${'v'.repeat(120)}`).join(',');
  const out = parseTracestate(long) ?? '';
  assert.ok(out.length <= 512, `${out.length} characters`);
  assert.equal(out.split(',').length, 4, 'the member that would pass 512 characters is left out');
});

test('ids: hex of the right length, valid, distinct across refills of the pool', () => {
  const pool = new IdPool();
  const seen = new Set<string>();
  for (let i = 0; i < 3000; i++) {
    const span = pool.spanId();
    const trace = pool.traceId();
    assert.match(span, /^[0-9a-f]{16}$/);
    assert.match(trace, /^[0-9a-f]{32}$/);
    assert.notEqual(span, '0'.repeat(16));
    seen.add(span);
    seen.add(trace);
  }
  assert.equal(seen.size, 6000);
});

test('sampler: 1 records every trace, 0 none; a ratio decides by the trace id alone', () => {
  const pool = new IdPool();
  const ids = Array.from({ length: 4000 }, () => pool.traceId());
  assert.ok(ids.every(ratioSampler(1)));
  assert.ok(!ids.some(ratioSampler(0)));
  const half = ratioSampler(0.5);
  const share = ids.filter(half).length / ids.length;
  assert.ok(share > 0.45 && share < 0.55, `${share} recorded at 0.5`);
  assert.deepEqual(ids.map(half), ids.map(ratioSampler(0.5)), 'the same decision for the same trace id anywhere');
  // The four 32-bit words XORed, below floor(ratio × 0xffffffff): at 0.5 that is 0x7fffffff, so 0x7ffffffe is in and 0x7fffffff out.
  assert.equal(ratioSampler(0.000001)(`00000001${'0'.repeat(24)}`), true);
  assert.equal(ratioSampler(0.999999)(`ffffffff${'0'.repeat(24)}`), false);
  assert.equal(ratioSampler(0.5)(`7ffffffe${'0'.repeat(24)}`), true);
  assert.equal(ratioSampler(0.5)(`7fffffff${'0'.repeat(24)}`), false);
  assert.equal(ratioSampler(0.5)(`80000000${'0'.repeat(24)}`), false);
  assert.equal(ratioSampler(0.5)(`80000000${'0'.repeat(16)}80000000`), true, 'two equal words cancel');
});
