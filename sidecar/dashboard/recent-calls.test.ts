// RecentCalls: records only while watched, hands out calls after a sequence number, keeps a bounded ring.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../metrics.ts';
import { RecentCalls, withRecentCalls } from './recent-calls.ts';

test('nothing is recorded until someone polls; then calls come in order after the last seen', () => {
  const recent = new RecentCalls();
  const metrics = withRecentCalls(createMetrics(), recent);
  metrics.observe('outbound', 'agent/echo', 'SendMessage', '-', 200, 0.01);
  assert.deepEqual(recent.after(0), { seq: 0, calls: [] });
  metrics.observe('outbound', 'agent/echo', 'SendMessage', '-', 200, 0.0125);
  metrics.observe('inbound', 'agent/me', 'GetTask', 'spiffe://td/agent/x', 404, 0.001);
  const page = recent.after(0);
  assert.equal(page.seq, 2);
  assert.deepEqual(page.calls.map((c) => [c.seq, c.direction, c.target, c.method, c.status, c.durationMs, c.caller]), [
    [1, 'outbound', 'agent/echo', 'SendMessage', 200, 12.5, undefined],
    [2, 'inbound', 'agent/me', 'GetTask', 404, 1, 'spiffe://td/agent/x'],
  ]);
  assert.deepEqual(recent.after(2).calls, []);
});

test('a poller far behind gets the newest calls the ring still holds', () => {
  const recent = new RecentCalls();
  recent.after(0);
  for (let i = 0; i < 500; i++) recent.record('outbound', 'agent/echo', 'SendMessage', '-', 200, 0.001);
  const page = recent.after(0);
  assert.equal(page.seq, 500);
  assert.equal(page.calls.length, 200);
  assert.equal(page.calls[0]?.seq, 301);
});
