// The adaptive limit against simulated agents: it grows while latency stays near the baseline and the
// limit is used, shrinks when latency rises or calls time out, stays in bounds, and settles near capacity.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdaptiveLimit } from './adaptive-limit.ts';

const settings = { initial: 20, min: 1, max: 1000 };

test('grows while latency stays at the baseline and the limit is in use, up to max', () => {
  const limit = new AdaptiveLimit({ ...settings, max: 200 });
  for (let i = 0; i < 200; i++) limit.sample(20, limit.limit);
  assert.ok(limit.limit > 20, `limit ${limit.limit}`);
  for (let i = 0; i < 20_000; i++) limit.sample(20, limit.limit);
  assert.equal(limit.limit, 200);
});

test('does not grow while the limit is not used (an idle agent says nothing about more load)', () => {
  const limit = new AdaptiveLimit(settings);
  for (let i = 0; i < 1000; i++) limit.sample(20, 2);
  assert.equal(limit.limit, 20);
});

test('shrinks when latency rises well above the baseline, not below min', () => {
  const limit = new AdaptiveLimit({ ...settings, min: 3 });
  for (let i = 0; i < 20; i++) limit.sample(20, limit.limit);
  const before = limit.limit;
  for (let i = 0; i < 40; i++) limit.sample(200, limit.limit);
  assert.ok(limit.limit < before, `limit ${limit.limit} after ${before}`);
  let lowest = limit.limit;
  for (let i = 0; i < 200; i++) {
    limit.sample(2000, limit.limit);
    lowest = Math.min(lowest, limit.limit);
  }
  assert.equal(lowest, 3);
});

test('an agent that stays slow even at the minimum limit becomes the new baseline', () => {
  const limit = new AdaptiveLimit(settings);
  for (let i = 0; i < 20; i++) limit.sample(20, limit.limit);
  for (let i = 0; i < 3000; i++) limit.sample(200, limit.limit);
  // Far enough that 200 ms counts as near it again (2 × baseline + 20 ms of slack).
  assert.ok(limit.snapshot().baselineMs >= 85, `baseline ${limit.snapshot().baselineMs}`);
  assert.ok(limit.limit > 1, `limit ${limit.limit}`);
});

test('timeouts shrink the limit', () => {
  const limit = new AdaptiveLimit(settings);
  for (let i = 0; i < 20; i++) limit.timeout(20);
  assert.equal(limit.limit, 14);
});

test('an agent that serves N calls at a time is kept busy (probes included) without a long queue inside it', () => {
  for (const capacity of [1, 4, 50]) {
    const limit = new AdaptiveLimit(settings);
    let used = 0;
    let highest = 0;
    const steps = 20_000;
    for (let i = 0; i < steps; i++) {
      const l = limit.limit;
      // Calls beyond capacity wait inside the agent: latency grows with the excess (the worst case:
      // every sample, even the first, has queued).
      limit.sample(20 * Math.max(1, l / capacity) * (0.9 + ((i * 7) % 10) / 50), l);
      if (i >= steps / 2) {
        used += Math.min(l, capacity) / capacity;
        highest = Math.max(highest, limit.limit);
      }
    }
    const busy = used / (steps / 2);
    assert.ok(busy >= 0.9, `capacity ${capacity}: the agent was busy ${(busy * 100).toFixed(1)} % of the time`);
    // Latency within 2x the baseline + 20 ms counts as near it, so here (20 ms calls) the limit settles at
    // about 3x the capacity; one growth step (its square root) may overshoot before a window shrinks it.
    assert.ok(highest <= 3 * capacity + Math.sqrt(3 * capacity) + 2, `capacity ${capacity}: limit rose to ${highest}`);
  }
});

test('snapshot reports the limit, smoothed latency and baseline', () => {
  const limit = new AdaptiveLimit(settings);
  assert.deepEqual(limit.snapshot(), { limit: 20, rttMs: 0, baselineMs: 0 });
  for (let i = 0; i < 20; i++) limit.sample(30, 1);
  const s = limit.snapshot();
  assert.equal(s.rttMs, 30);
  assert.equal(s.baselineMs, 30);
  assert.equal(limit.rttMs, 30);
});

test('an agent answering in microseconds keeps its limit through a few milliseconds of scheduling noise', () => {
  const limit = new AdaptiveLimit(settings);
  for (let i = 0; i < 2000; i++) limit.sample(i % 3 === 0 ? 12 : 0.2, limit.limit);
  const grown = limit.limit;
  assert.ok(grown >= settings.initial, `limit fell to ${grown}`);
  // Latency far beyond the slack still shrinks it.
  for (let i = 0; i < 4 * grown; i++) limit.sample(200, limit.limit);
  assert.ok(limit.limit < grown / 2, `limit went from ${grown} to ${limit.limit} while latency rose 1000-fold`);
});
