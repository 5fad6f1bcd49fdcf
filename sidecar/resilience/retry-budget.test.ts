// The retry budget under a fake clock: the starting allowance, the share each request deposits, the
// per-second refill and its cap; and the full-jitter bounds.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fullJitter, RetryBudget } from './retry-budget.ts';

function drain(budget: RetryBudget): number {
  let n = 0;
  while (budget.tryWithdraw()) if (++n > 1000) throw new Error('budget never ran out');
  return n;
}

function fakeClock(t: TestContext): void {
  t.mock.timers.enable({ apis: ['Date'], now: 10_000_000 });
}

test('a new budget allows perSecond retries, then none until requests or time add more', (t) => {
  fakeClock(t);
  const budget = new RetryBudget(0.2, 10);
  assert.equal(drain(budget), 10);
  assert.equal(budget.tryWithdraw(), false);
});

test('each request deposits `ratio` of a retry', (t) => {
  fakeClock(t);
  const budget = new RetryBudget(0.25, 10);
  drain(budget);
  for (let i = 0; i < 3; i++) budget.onRequest();
  assert.equal(budget.tryWithdraw(), false, '3 × 0.25 is less than one retry');
  budget.onRequest();
  assert.equal(budget.tryWithdraw(), true);
  assert.equal(budget.tryWithdraw(), false);
  for (let i = 0; i < 40; i++) budget.onRequest();
  assert.equal(drain(budget), 10, 'deposits stop at the cap');
});

test('time refills perSecond a second, up to the cap', (t) => {
  fakeClock(t);
  const budget = new RetryBudget(0, 20);
  assert.equal(drain(budget), 20);
  t.mock.timers.tick(40);
  assert.equal(budget.tryWithdraw(), false, '40 ms at 20/s is 0.8 of a retry');
  t.mock.timers.tick(20);
  assert.equal(drain(budget), 1, '60 ms is 1.2 retries');
  t.mock.timers.tick(500);
  assert.equal(drain(budget), 10);
  t.mock.timers.tick(60_000);
  assert.equal(drain(budget), 20, 'an idle minute refills to the cap (perSecond), not beyond');
});

test('a small perSecond still caps at 10', (t) => {
  fakeClock(t);
  const budget = new RetryBudget(1, 1);
  assert.equal(drain(budget), 1);
  for (let i = 0; i < 50; i++) budget.onRequest();
  assert.equal(drain(budget), 10);
});

test('full jitter waits between 0 and min(cap, base × 2^attempt)', (t) => {
  t.mock.method(Math, 'random', () => 0.999999);
  assert.ok(fullJitter(0, 25, 1000) < 25 && fullJitter(0, 25, 1000) > 24.9);
  assert.ok(fullJitter(3, 25, 1000) > 199.9 && fullJitter(3, 25, 1000) < 200);
  assert.ok(fullJitter(10, 25, 1000) > 999.9 && fullJitter(10, 25, 1000) < 1000);
  t.mock.method(Math, 'random', () => 0);
  assert.equal(fullJitter(5), 0);
});
