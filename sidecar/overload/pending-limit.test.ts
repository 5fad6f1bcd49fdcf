// The calling side's bound on pending calls per target: a fast 503 with Retry-After beyond it, counted
// until the response closes, other targets unaffected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { isMeshError } from '../../sdk/errors.ts';
import { PendingLimit } from './pending-limit.ts';

function response() {
  return Object.assign(new EventEmitter(), { destroyed: false });
}

test('beyond max pending calls to a target the next is refused at once with OVERLOADED and a retry-after', () => {
  const pending = new PendingLimit(2);
  const held = [response(), response()];
  for (const res of held) pending.hold('worker', res);
  assert.throws(() => pending.hold('worker', response()), (err: unknown) =>
    isMeshError(err, 'OVERLOADED') && err.retryAfterMs === 1000 && /2 calls to 'worker' are already pending at this sidecar \(limits\.pendingPerTarget 2\)/.test(err.message));
  pending.hold('other', response());
  held[0]?.emit('close');
  pending.hold('worker', response());
  assert.deepEqual(pending.snapshot(), { max: 2, pending: { worker: 2, other: 1 }, rejected: { worker: 1 } });
});

test('a response already closed is not counted', () => {
  const pending = new PendingLimit(1);
  pending.hold('worker', Object.assign(response(), { destroyed: true }));
  pending.hold('worker', response());
  assert.deepEqual(pending.snapshot().pending, { worker: 1 });
});
