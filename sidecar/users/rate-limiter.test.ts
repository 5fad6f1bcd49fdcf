import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMeshError } from '../../sdk/errors.ts';
import { configLimits, RateLimiter } from './rate-limiter.ts';

const A = 'spiffe://mesh.test/agent/a';
const target = { kind: 'agent' as const, name: 'b' };

test('a token bucket per (caller, target): burst, then refill at the rate, with the wait as retryAfterMs', () => {
  let now = 0;
  const limiter = new RateLimiter(configLimits([{ from: { identity: ['spiffe://mesh.test/agent/*'] }, to: { agent: 'b' }, rate: { tokens: 2, perMs: 1000 }, burst: 3 }]), () => now);
  for (let i = 0; i < 3; i++) limiter.take(A, target);
  assert.throws(() => limiter.take(A, target), (err) => isMeshError(err, 'RATE_LIMITED') && err.retryAfterMs === 500 && /rateLimits\[0\]/.test(err.message));
  // Another caller and another target have their own buckets; an unmatched target has none.
  limiter.take('spiffe://mesh.test/agent/c', target);
  limiter.take(A, { kind: 'agent', name: 'other' });
  limiter.take(A, { kind: 'mcp', name: 'b' });
  now = 500;
  limiter.take(A, target);
  assert.throws(() => limiter.take(A, target), (err) => isMeshError(err, 'RATE_LIMITED'));
  now = 10_000;
  for (let i = 0; i < 3; i++) limiter.take(A, target);
  assert.throws(() => limiter.take(A, target));
});

test('callers that no limit names are never limited', () => {
  const limiter = new RateLimiter(configLimits([{ from: { identity: ['spiffe://mesh.test/agent/x'] }, to: { mcp: 's*' }, rate: { tokens: 1, perMs: 60_000 } }]), () => 0);
  for (let i = 0; i < 100; i++) limiter.take(A, { kind: 'mcp', name: 'stats' });
  limiter.take('spiffe://mesh.test/agent/x', { kind: 'mcp', name: 'stats' });
  assert.throws(() => limiter.take('spiffe://mesh.test/agent/x', { kind: 'mcp', name: 'stats' }));
});
