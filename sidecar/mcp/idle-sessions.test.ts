// IdleSessions: a session is handed over only when nothing holds it and it has been idle for the timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdleSessions } from './idle-sessions.ts';

test('idle sessions are handed over after the timeout; held ones never, released ones a timeout later', () => {
  const ended: string[] = [];
  const idle = new IdleSessions<string>(1000, (key) => ended.push(key));
  const start = Date.now();
  idle.add('a');
  idle.add('b');
  const release = idle.hold('b');
  idle.sweep(start + 999);
  assert.deepEqual(ended, []);
  idle.sweep(start + 5000);
  assert.deepEqual(ended, ['a'], 'b is held (a request or stream is open)');
  release();
  release(); // twice is harmless
  const released = Date.now();
  idle.sweep(released + 999);
  assert.deepEqual(ended, ['a']);
  idle.sweep(released + 1000);
  assert.deepEqual(ended, ['a', 'b']);
  assert.equal(idle.size, 0);
  idle.close();
});

test('a deleted session is not handed over, and close() stops tracking', () => {
  const ended: string[] = [];
  const idle = new IdleSessions<string>(1000, (key) => ended.push(key));
  idle.add('a');
  idle.delete('a');
  idle.add('b');
  idle.close();
  idle.sweep(Date.now() + 10_000);
  assert.deepEqual(ended, []);
});
