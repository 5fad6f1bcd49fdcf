// Guards the growing reset timeout in balancer.ts: it writes opossum's undeclared `options.resetTimeout`,
// so an opossum release that stops reading it on every open must fail here (fake time, no real waits).
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { Balancer, type BreakerEvent } from './balancer.ts';

test('each re-open waits twice as long before the half-open probe, capped, and a close resets it', async (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const events: BreakerEvent['type'][] = [];
  const balancer = new Balancer({
    window: 10_000, volumeThreshold: 1, errorThresholdPercentage: 50, consecutiveFailures: 1, resetTimeout: 1000, maxResetTimeout: 3000,
  }, (e) => events.push(e.type));
  t.after(() => balancer.close());
  const fail = () => balancer.call('i1', false, () => Promise.reject(new Error('refused'))).catch(() => undefined);
  const succeed = () => balancer.call('i1', false, () => Promise.resolve('ok'));
  /** Advances fake time by `ms` and says whether the breaker went half-open exactly at the end. */
  const halfOpensAfter = (ms: number): void => {
    mock.timers.tick(ms - 1);
    assert.equal(events.at(-1), 'open', `half-open came before ${ms} ms`);
    mock.timers.tick(1);
    assert.equal(events.at(-1), 'half-open', `no half-open after ${ms} ms`);
  };

  await fail();
  assert.deepEqual(events, ['open']);
  halfOpensAfter(1000);
  await fail(); // the probe fails: re-open, twice the wait
  halfOpensAfter(2000);
  await fail(); // capped at maxResetTimeout
  halfOpensAfter(3000);
  await succeed(); // the probe succeeds: closed, and the wait starts over
  assert.equal(events.at(-1), 'close');
  await fail();
  halfOpensAfter(1000);
  assert.deepEqual(events, ['open', 'half-open', 'open', 'half-open', 'open', 'half-open', 'close', 'open', 'half-open']);
});
