// Tap filters: parsed from the query with clear problems, and matched against call events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CallEvent } from './call-event.ts';
import { matches, parseFilter } from './tap.ts';

const event: CallEvent = {
  time: '2026-01-01T00:00:00.000Z', requestId: 'r', direction: 'inbound', caller: 'spiffe://td/agent/alice',
  target: 'agent/bob', method: 'SendMessage', status: 200, durationMs: 1, retries: 0, hops: 1,
};

test('filters: agent (target or calling agent), method (any case), direction', () => {
  const f = (q: string) => { const r = parseFilter(new URLSearchParams(q)); assert.equal(typeof r, 'object'); return r as Exclude<typeof r, string>; };
  assert.ok(matches(f(''), event));
  assert.ok(matches(f('agent=bob'), event));
  assert.ok(matches(f('agent=alice'), event), 'the calling agent matches too');
  assert.ok(!matches(f('agent=carol'), event));
  assert.ok(matches(f('method=sendmessage'), event));
  assert.ok(!matches(f('method=GetTask'), event));
  assert.ok(!matches(f('direction=outbound'), event));
});

test('a bad filter is named', () => {
  assert.match(String(parseFilter(new URLSearchParams('agnt=x'))), /unknown tap filter 'agnt'/);
  assert.match(String(parseFilter(new URLSearchParams('direction=sideways'))), /outbound or inbound/);
  assert.match(String(parseFilter(new URLSearchParams('method='))), /needs a value/);
});
