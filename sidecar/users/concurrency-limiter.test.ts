import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMeshError } from '../../sdk/errors.ts';
import { CONCURRENCY_RETRY_AFTER_MS, ConcurrencyLimiter } from './concurrency-limiter.ts';

const A = 'spiffe://mesh.test/agent/a';
const B = 'spiffe://mesh.test/agent/b';
const target = { kind: 'agent' as const, name: 'slow' };

test('in-flight calls per (limit, caller, target): over the limit is RATE_LIMITED with a Retry-After, a release frees a slot once', () => {
  const limiter = new ConcurrencyLimiter((caller, t) => (t.name === 'slow' ? [{ name: 'two-at-a-time', concurrency: 2 }] : []));
  const first = limiter.acquire(A, target);
  const second = limiter.acquire(A, target);
  assert.throws(() => limiter.acquire(A, target), (err) => isMeshError(err, 'RATE_LIMITED') && err.retryAfterMs === CONCURRENCY_RETRY_AFTER_MS
    && /2 calls in flight to agent 'slow' \(limit 'two-at-a-time': concurrency 2\)/.test(err.message));
  // Another caller has its own count; a target no limit names has none.
  assert.ok(limiter.acquire(B, target));
  assert.equal(limiter.acquire(A, { kind: 'agent', name: 'fast' }), undefined);
  first?.();
  first?.(); // idempotent: frees one slot, not two
  const third = limiter.acquire(A, target);
  assert.throws(() => limiter.acquire(A, target), (err) => isMeshError(err, 'RATE_LIMITED'));
  second?.();
  third?.();
  assert.equal(limiter.inFlight(), 1); // B's
});

test('a refusal by one limit takes no slot of another', () => {
  const limiter = new ConcurrencyLimiter(() => [{ name: 'wide', concurrency: 5 }, { name: 'narrow', concurrency: 1 }]);
  limiter.acquire(A, target);
  for (let i = 0; i < 3; i++) assert.throws(() => limiter.acquire(A, target), (err) => isMeshError(err, 'RATE_LIMITED') && /'narrow'/.test(err.message));
  assert.equal(limiter.inFlight(), 2); // one slot of each limit, from the one call admitted
});
