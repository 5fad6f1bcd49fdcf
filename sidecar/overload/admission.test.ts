// Admission without a socket, on a fake clock (mock.timers for the queue's deadlines): slots up to the
// limit, a fair dequeue across callers, 429 over a caller's share, deadline shedding, streams apart.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { isMeshError } from '../../sdk/errors.ts';
import { Admission, type AdmissionSettings, type Permit } from './admission.ts';

function admission(overrides: Partial<AdmissionSettings> & { limit?: number } = {}) {
  let now = 0;
  const { limit = 2, ...rest } = overrides;
  const a = new Admission({
    agent: 'worker', concurrency: { initial: limit, min: limit, max: limit }, queue: 10, streams: 100, streamsPerCaller: 10,
    callers: () => undefined, maxQueueWaitMs: 30_000, now: () => now, ...rest,
  });
  return { a, advance: (ms: number) => { now += ms; } };
}

const A = 'spiffe://t.test/agent/a';
const B = 'spiffe://t.test/agent/b';

function granted(p: Permit | Promise<Permit>): Permit {
  assert.ok(!(p instanceof Promise), 'admitted at once');
  return p;
}

function queued(p: Permit | Promise<Permit>): Promise<Permit> {
  assert.ok(p instanceof Promise, 'queued');
  return p;
}

/** The error a call is refused with at once. */
function refused(fn: () => unknown): { code: string; retryAfterMs: number | undefined; message: string; reason: unknown } {
  try {
    fn();
  } catch (err) {
    assert.ok(isMeshError(err), `a MeshError, got ${String(err)}`);
    return { code: err.code, retryAfterMs: err.retryAfterMs, message: err.message, reason: err.details?.reason };
  }
  assert.fail('expected a refusal');
}

/** Whether a promise has settled, after pending microtasks ran. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => { done = true; }, () => { done = true; });
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('Admission', () => {
  test('admits up to the limit at once, queues beyond it, and starts the queued call when a slot frees', async () => {
    const { a } = admission();
    const first = granted(a.acquire(A, 'call', 5000));
    granted(a.acquire(A, 'call', 5000));
    const third = queued(a.acquire(A, 'call', 5000));
    assert.equal(await settled(third), false);
    assert.equal(a.snapshot().queued, 1);
    first.release('ok');
    first.release('ok'); // idempotent
    await third;
    assert.deepEqual([a.snapshot().inflight, a.snapshot().queued], [2, 0]);
  });

  test('dequeues fairly across callers, not first come first served', async () => {
    const { a } = admission();
    const held = [granted(a.acquire(A, 'call', 5000)), granted(a.acquire(A, 'call', 5000))];
    const order: string[] = [];
    for (let i = 0; i < 3; i++) void queued(a.acquire(A, 'call', 5000)).then(() => order.push('A'));
    void queued(a.acquire(B, 'call', 5000)).then(() => order.push('B'));
    held[0]?.release('ok');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, ['B'], 'B, under its share, goes before A\'s earlier calls');
  });

  test('a caller over its share while others are active gets 429 with Retry-After; alone it may use the whole limit', () => {
    const { a } = admission({ limit: 4 });
    for (let i = 0; i < 3; i++) granted(a.acquire(A, 'call', 5000));
    granted(a.acquire(B, 'call', 5000));
    const r = refused(() => a.acquire(A, 'call', 5000));
    assert.equal(r.code, 'CALLER_OVER_LIMIT');
    assert.equal(r.reason, 'caller-share');
    assert.ok(r.retryAfterMs !== undefined);
    assert.match(r.message, /caller spiffe:\/\/t\.test\/agent\/a is over its share of agent 'worker': 3 calls in flight, its fair share of the limit of 4/);
    assert.equal(a.snapshot().rejected['caller-share'], 1);
  });

  test('a per-caller maxConcurrent is a hard cap, even with free capacity', () => {
    const { a } = admission({ limit: 10, callers: (id) => (id === A ? { maxConcurrent: 1 } : undefined) });
    granted(a.acquire(A, 'call', 5000));
    assert.equal(refused(() => a.acquire(A, 'call', 5000)).code, 'CALLER_OVER_LIMIT');
    granted(a.acquire(B, 'call', 5000));
  });

  test('a heavier caller gets a larger share', () => {
    const { a } = admission({ limit: 4, callers: (id) => (id === A ? { weight: 3 } : undefined) });
    granted(a.acquire(B, 'call', 5000));
    for (let i = 0; i < 3; i++) granted(a.acquire(A, 'call', 5000));
    // Saturated: A holds 3 of 4 (its share with weight 3 of 4), so one more is over it; B (share 1) has its 1.
    assert.equal(refused(() => a.acquire(A, 'call', 5000)).code, 'CALLER_OVER_LIMIT');
    assert.equal(refused(() => a.acquire(B, 'call', 5000)).code, 'CALLER_OVER_LIMIT');
  });

  test('a call whose deadline cannot be met is refused at once with 503; one that runs out in the queue too', async (t: TestContext) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { a, advance } = admission({ limit: 1 });
    // Teach the limiter that the agent takes 100 ms.
    for (let i = 0; i < 5; i++) {
      const p = granted(a.acquire(A, 'call', 5000));
      advance(100);
      p.release('ok');
    }
    assert.equal(a.snapshot().rttMs, 100);
    // A free slot, but a budget below what the agent typically takes (100 ms x 1.5 headroom): refused at once.
    const short = refused(() => a.acquire(A, 'call', 120));
    assert.equal(short.reason, 'deadline');
    assert.match(short.message, /remaining deadline of 120 ms \(it would take about 100 ms\)/);
    const running = granted(a.acquire(A, 'call', 5000));
    // About 100 ms queued and 150 ms to run: more than half of a 450 ms budget (the margin for a wrong estimate).
    const r = refused(() => a.acquire(A, 'call', 450));
    assert.equal(r.code, 'OVERLOADED');
    assert.equal(r.reason, 'deadline');
    assert.match(r.message, /cannot answer within the call's deadline of 450 ms/);
    // Queued with 1000 ms: it leaves the queue refused once less than 150 ms would be left, never sent late.
    const waiting = queued(a.acquire(A, 'call', 1000));
    t.mock.timers.tick(849);
    assert.equal(await settled(waiting), false);
    t.mock.timers.tick(1);
    await assert.rejects(waiting, (err: unknown) => isMeshError(err, 'OVERLOADED') && err.details?.reason === 'queue-timeout' && err.retryAfterMs !== undefined);
    assert.equal(a.snapshot().queued, 0);
    // A slot that frees up after the queued call's deadline shrank below the agent's latency: refused, not started.
    const late = queued(a.acquire(A, 'call', 1000));
    advance(900);
    running.release('other');
    await assert.rejects(late, (err: unknown) => isMeshError(err, 'OVERLOADED') && err.details?.reason === 'queue-timeout');
    assert.deepEqual([a.snapshot().inflight, a.snapshot().queued], [0, 0]);
  });

  test('waits are estimated from the time between completions, not from the limit', () => {
    // An agent that serves 2 calls at a time (200 ms each) behind a limit of 20: completions come every
    // 100 ms on average, so 20 calls in flight take about 2 s each, whatever the limit says.
    const { a, advance } = admission({ limit: 20 });
    const running: Permit[] = Array.from({ length: 20 }, () => granted(a.acquire(A, 'call', 60_000)));
    for (let i = 0; i < 100; i++) {
      advance(200);
      for (let k = 0; k < 2; k++) {
        running.shift()?.release('ok');
        running.push(granted(a.acquire(A, 'call', 60_000)));
      }
    }
    const interval = a.snapshot().intervalMs;
    assert.ok(interval > 80 && interval < 120, `time between completions ${interval} ms`);
    // First in the queue: ~100 ms of wait, then ~2 s in the agent (x1.5 headroom) — more than half of 5 s.
    const r = refused(() => a.acquire(B, 'call', 5000));
    assert.equal(r.reason, 'deadline');
    void queued(a.acquire(B, 'call', 8000)).catch(() => undefined);
    a.close();
  });

  test('an agent that serves many calls at once is not refused for the calls it already runs', () => {
    // 1 s per call, 60 at a time, never at the limit: nothing says calls wait inside it.
    const { a, advance } = admission({ limit: 100 });
    const running: Permit[] = Array.from({ length: 60 }, () => granted(a.acquire(A, 'call', 5000)));
    for (let i = 0; i < 200; i++) {
      advance(1000 / 60);
      running.shift()?.release('ok');
      running.push(granted(a.acquire(A, 'call', 5000)));
    }
    assert.equal(a.snapshot().intervalMs, 0, 'never busy: no time between completions measured');
    granted(a.acquire(B, 'call', 2000));
  });

  test('a full queue refuses with 503 and Retry-After', () => {
    const { a } = admission({ limit: 1, queue: 2 });
    granted(a.acquire(A, 'call', 5000));
    void queued(a.acquire(A, 'call', 5000)).catch(() => undefined);
    void queued(a.acquire(A, 'call', 5000)).catch(() => undefined);
    const r = refused(() => a.acquire(A, 'call', 5000));
    assert.equal(r.code, 'OVERLOADED');
    assert.equal(r.reason, 'queue-full');
    assert.ok(r.retryAfterMs !== undefined);
    a.close();
  });

  test('a caller may not fill the queue while another caller waits', () => {
    const { a } = admission({ limit: 4, queue: 4 });
    for (let i = 0; i < 3; i++) granted(a.acquire(B, 'call', 5000));
    granted(a.acquire(A, 'call', 5000));
    // A and B are active: A is under its share of the limit (2) and may hold 2 of the 4 queue places.
    void queued(a.acquire(A, 'call', 5000)).catch(() => undefined);
    void queued(a.acquire(A, 'call', 5000)).catch(() => undefined);
    assert.equal(refused(() => a.acquire(A, 'call', 5000)).reason, 'caller-queue');
    a.close();
  });

  test('a queued call whose caller goes away leaves the queue', async () => {
    const { a } = admission({ limit: 1 });
    const held = granted(a.acquire(A, 'call', 5000));
    const res = new EventEmitter();
    const waiting = queued(a.acquire(A, 'call', 5000, res));
    res.emit('close');
    await assert.rejects(waiting, (err: unknown) => isMeshError(err, 'ABORTED'));
    assert.equal(a.snapshot().queued, 0);
    held.release('ok');
    assert.equal(a.snapshot().inflight, 0);
    assert.equal(res.listenerCount('close'), 0);
  });

  test('streams do not take call slots; they are capped per caller (429) and in total', () => {
    const { a } = admission({ limit: 1, streams: 3, streamsPerCaller: 2 });
    granted(a.acquire(A, 'call', 5000));
    const s1 = granted(a.acquire(A, 'stream', 5000));
    granted(a.acquire(A, 'stream', 5000));
    const r = refused(() => a.acquire(A, 'stream', 5000));
    assert.equal(r.code, 'CALLER_OVER_LIMIT');
    assert.match(r.message, /: 2 streams open, its cap \(limits\.streamsPerCaller 2\)/);
    granted(a.acquire(B, 'stream', 5000));
    const total = refused(() => a.acquire('spiffe://t.test/agent/c', 'stream', 5000));
    assert.equal(total.code, 'OVERLOADED');
    assert.equal(total.reason, 'streams');
    s1.release('ok');
    s1.release('ok');
    assert.equal(a.snapshot().streams, 2);
    granted(a.acquire(A, 'stream', 5000));
  });

  test('close() refuses queued and later calls with SHUTTING_DOWN', async () => {
    const { a } = admission({ limit: 1 });
    granted(a.acquire(A, 'call', 5000));
    const waiting = queued(a.acquire(B, 'call', 5000));
    a.close();
    a.close();
    await assert.rejects(waiting, (err: unknown) => isMeshError(err, 'SHUTTING_DOWN'));
    assert.equal(refused(() => a.acquire(A, 'call', 5000)).code, 'SHUTTING_DOWN');
  });

  test('forgets callers with nothing in flight', () => {
    const { a } = admission({ limit: 4 });
    const p = granted(a.acquire(A, 'call', 5000));
    assert.equal(a.snapshot().callers.length, 1);
    p.release('ok');
    assert.equal(a.snapshot().callers.length, 0);
  });
});
