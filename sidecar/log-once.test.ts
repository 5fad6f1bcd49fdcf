// FailureLog: one line when a run of failures starts, one when it ends (with the count), reminders
// only after remindMs; read back from a real pino logger's JSON lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { FailureLog } from './log-once.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done(); },
  });
  return { lines, log: pino({ level: 'info' }, stream) };
}

test('a run of failures logs once at the start and once on recovery, with the count', async () => {
  const { lines, log } = capture();
  let now = 1_000_000;
  const failures = new FailureLog(log, { what: 'task affinity store', now: () => now });
  failures.success(); // nothing failed: nothing logged
  for (let i = 0; i < 500; i++) { failures.failure(new Error(`timeout ${i}`)); now += 10; }
  assert.equal(failures.failures, 500);
  failures.success();
  failures.success();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(lines.length, 2);
  const [first, last] = lines;
  assert.equal(first?.msg, 'task affinity store failing');
  assert.equal(first?.failures, 1);
  assert.equal(first?.since, new Date(1_000_000).toISOString());
  assert.match(JSON.stringify(first?.err), /timeout 0/);
  assert.equal(last?.msg, 'task affinity store recovered after 500 failures');
  assert.equal(last?.failures, 500);
  assert.equal(last?.downMs, 5000);
  assert.equal(failures.failures, 0);
});

test('each new run starts over; a long run is summarised at most once per remindMs', async () => {
  const { lines, log } = capture();
  let now = 0;
  const failures = new FailureLog(log, { what: 'heartbeat', remindMs: 60_000, now: () => now });
  failures.failure(new Error('a'));
  failures.success();
  failures.failure(new Error('b'));
  now += 59_999;
  failures.failure(new Error('c')); // not yet a minute
  now += 1;
  failures.failure(new Error('d')); // a minute: one reminder
  now += 1000;
  failures.failure(new Error('e'));
  failures.success();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(lines.map((l) => l.msg), [
    'heartbeat failing',
    'heartbeat recovered after 1 failure',
    'heartbeat failing',
    `heartbeat still failing since ${new Date(0).toISOString()}, 3 times`,
    'heartbeat recovered after 4 failures',
  ]);
  assert.equal(lines[3]?.err, 'd');
});
