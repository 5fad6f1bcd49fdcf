// The balancer under fake time (node:test mock.timers drives opossum's reset timer and Date.now): power of
// two choices, ejection after a run of failures, the half-open probe, the growing reset timeout, the last
// instance never ejected, and the 429 penalty.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { isMeshError } from '../../sdk/errors.ts';
import { Balancer, StatusFailure, type BreakerEvent, type BreakerSettings } from './balancer.ts';

const SETTINGS: BreakerSettings = {
  window: 10_000, volumeThreshold: 20, errorThresholdPercentage: 50,
  consecutiveFailures: 3, resetTimeout: 30_000, maxResetTimeout: 100_000,
};

function setup(t: TestContext, settings: Partial<BreakerSettings> = {}) {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
  const events: BreakerEvent[] = [];
  const balancer = new Balancer({ ...SETTINGS, ...settings }, (e) => events.push(e));
  t.after(() => balancer.close());
  const fail = (instance: string, alone = false) =>
    balancer.call(instance, alone, async () => { throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }); }).catch((err: unknown) => err);
  const ok = (instance: string, alone = false) => balancer.call(instance, alone, async () => 'ok');
  const state = (instance: string) => balancer.snapshot()[instance]?.state;
  const types = (instance: string) => events.filter((e) => e.instance === instance).map((e) => e.type);
  return { balancer, events, fail, ok, state, types };
}

const c = (instance: string) => ({ instance });

describe('Balancer', () => {
  test('a run of consecutive failures ejects the instance; fewer do not', async (t) => {
    const { balancer, fail, ok, state, types } = setup(t);
    await ok('a');
    await fail('a');
    await fail('a');
    assert.equal(state('a'), 'closed', 'two failures in a row stay below consecutiveFailures=3');
    await ok('a');
    await fail('a');
    await fail('a');
    assert.equal(state('a'), 'closed', 'a success resets the run');
    await fail('a');
    assert.equal(state('a'), 'open');
    assert.deepEqual(types('a'), ['open']);
    let ran = false;
    const refused = await balancer.call('a', false, async () => { ran = true; return 'x'; }).catch((err: unknown) => err);
    assert.equal(ran, false, 'an open breaker does not run the call');
    assert.ok(isMeshError(refused, 'UPSTREAM_UNAVAILABLE'));
    assert.equal(refused.details?.breaker, 'open');
    // The ejected instance is skipped while a healthy one is left.
    for (let i = 0; i < 20; i++) assert.equal(balancer.pick([c('a'), c('b')], new Set())?.instance, 'b');
  });

  test('the error percentage opens the breaker once the window holds volumeThreshold calls; calls in flight count, aborted ones do not fail', async (t) => {
    const { balancer, fail, ok, state, types } = setup(t, { volumeThreshold: 6, errorThresholdPercentage: 50, consecutiveFailures: 100 });
    const aborted = () => balancer.call('a', false, async () => { throw Object.assign(new Error('gone'), { code: 'ABORTED' }); }).catch((err: unknown) => err);
    await ok('a');
    await fail('a');
    await fail('a');
    await fail('a');
    assert.equal(state('a'), 'closed', '3 failures of 4 calls: below the volume threshold of six');
    await aborted();
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => { release = resolve; });
    const inFlight = [balancer.call('a', false, () => held.then(() => 'late')), balancer.call('a', false, () => held.then(() => 'late'))];
    await fail('a');
    // Were the aborted call a failure, or the two calls in flight not counted, this would be 5 of 8 or 4 of 6.
    assert.equal(state('a'), 'closed', '4 failures of 8 calls (the aborted one and the two in flight count as calls, not failures): not above 50 %');
    await fail('a');
    assert.equal(state('a'), 'open', '5 of 9: above 50 %');
    release();
    assert.deepEqual(await Promise.all(inFlight), ['late', 'late'], 'calls already running when it opened finish');
    assert.equal(state('a'), 'open');
    assert.deepEqual(types('a'), ['open']);
  });

  test('the half-open probe comes after resetTimeout, and a good probe closes the breaker', async (t) => {
    const { balancer, fail, ok, state, types } = setup(t);
    for (let i = 0; i < 3; i++) await fail('a');
    assert.equal(state('a'), 'open');
    t.mock.timers.tick(SETTINGS.resetTimeout - 1);
    assert.equal(state('a'), 'open');
    t.mock.timers.tick(1);
    assert.equal(state('a'), 'half-open');
    // The half-open instance gets the probe even though b is healthy.
    assert.equal(balancer.pick([c('b'), c('a')], new Set())?.instance, 'a');
    assert.equal(await ok('a'), 'ok');
    assert.equal(state('a'), 'closed');
    assert.deepEqual(types('a'), ['open', 'half-open', 'close']);
  });

  test('each re-open waits twice as long, up to maxResetTimeout; a close resets the wait', async (t) => {
    const { fail, ok, state } = setup(t);
    const waitUntilHalfOpen = async (expected: number) => {
      t.mock.timers.tick(expected - 1);
      assert.equal(state('a'), 'open', `still open 1 ms before ${expected} ms`);
      t.mock.timers.tick(1);
      assert.equal(state('a'), 'half-open', `half-open after ${expected} ms`);
    };
    for (let i = 0; i < 3; i++) await fail('a');
    await waitUntilHalfOpen(30_000);
    await fail('a'); // the probe fails: open again
    assert.equal(state('a'), 'open');
    await waitUntilHalfOpen(60_000);
    await fail('a');
    await waitUntilHalfOpen(100_000); // 120 s capped at maxResetTimeout
    await fail('a');
    await waitUntilHalfOpen(100_000);
    await ok('a');
    assert.equal(state('a'), 'closed');
    for (let i = 0; i < 3; i++) await fail('a');
    await waitUntilHalfOpen(30_000);
  });

  test('the last instance is never ejected: alone, an open breaker is bypassed', async (t) => {
    const { balancer, fail, state } = setup(t);
    for (let i = 0; i < 3; i++) await fail('a');
    assert.equal(state('a'), 'open');
    assert.equal(await balancer.call('a', true, async () => 'served'), 'served');
    // With every instance open, pick still returns one rather than nothing.
    for (let i = 0; i < 3; i++) await fail('b');
    assert.ok(balancer.pick([c('a'), c('b')], new Set()));
  });

  test('power of two choices: the busiest instance is never picked, the others are', async (t) => {
    const { balancer } = setup(t);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => { release = resolve; });
    const pending = [balancer.call('busy', false, () => held), balancer.call('busy', false, () => held)];
    const seen = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const pick = balancer.pick([c('busy'), c('x'), c('y')], new Set())?.instance ?? 'none';
      seen.set(pick, (seen.get(pick) ?? 0) + 1);
    }
    assert.equal(seen.get('busy'), undefined, 'two in-flight calls make busy the costlier of any pair');
    assert.ok((seen.get('x') ?? 0) > 0 && (seen.get('y') ?? 0) > 0, `both idle instances chosen: ${JSON.stringify([...seen])}`);
    assert.equal(balancer.pick([c('busy'), c('x')], new Set(['x']))?.instance, 'busy', 'excluded instances are not picked');
    assert.equal(balancer.pick([c('x')], new Set(['x'])), undefined);
    release();
    await Promise.all(pending);
  });

  test('a 429 keeps the instance at the back for its Retry-After (1 s without one)', async (t) => {
    const { balancer } = setup(t);
    const tooMany = (ms: number | undefined) => balancer.call('a', false, async () => { throw new StatusFailure(429, undefined, ms); }).catch(() => undefined);
    // b carries one call in flight, so without a penalty a (idle) is the cheaper choice.
    let release: () => void = () => undefined;
    const held = balancer.call('b', false, () => new Promise<void>((resolve) => { release = resolve; }));
    const pick = () => balancer.pick([c('a'), c('b')], new Set())?.instance;
    assert.equal(pick(), 'a');
    await tooMany(5000);
    assert.equal(pick(), 'b');
    t.mock.timers.tick(4999);
    assert.equal(pick(), 'b');
    t.mock.timers.tick(2);
    assert.equal(pick(), 'a');
    await tooMany(undefined);
    assert.equal(pick(), 'b');
    t.mock.timers.tick(1001);
    assert.equal(pick(), 'a');
    release();
    await held;
  });

  test('an action that throws instead of returning a promise fails the attempt like a rejection, open or closed', async (t) => {
    const { balancer, state } = setup(t);
    const boom = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const throwing = (alone: boolean) => balancer.call('a', alone, () => { throw boom; });
    for (let i = 0; i < 3; i++) assert.equal(await throwing(false).catch((err: unknown) => err), boom);
    assert.equal(state('a'), 'open', 'three synchronous throws in a row eject the instance');
    assert.equal(balancer.snapshot().a?.inflight, 0);
    assert.equal(await throwing(true).catch((err: unknown) => err), boom, 'alone, the open breaker is bypassed and the throw rejects');
    assert.equal(balancer.snapshot().a?.inflight, 0);
  });

  test('retain forgets instances that left; close shuts every breaker', async (t) => {
    const { balancer, ok } = setup(t);
    await ok('a');
    await ok('b');
    balancer.retain(new Set(['b']));
    assert.deepEqual(Object.keys(balancer.snapshot()), ['b']);
    balancer.close();
    assert.deepEqual(balancer.snapshot(), {});
  });
});
