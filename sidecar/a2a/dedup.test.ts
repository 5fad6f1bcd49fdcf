import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dedupKey, MessageDedup, recorder, type Outcome } from './dedup.ts';

test('the key is caller, agent and message id', () => {
  assert.equal(dedupKey('spiffe://t/a', 'echo', 'm-1'), 'spiffe://t/a echo m-1');
  assert.notEqual(dedupKey('spiffe://t/a', 'echo', 'm-1'), dedupKey('spiffe://t/b', 'echo', 'm-1'));
});

test('recorded answers are dropped oldest first once they pass the byte limit', async () => {
  const dedup = new MessageDedup();
  const body = Buffer.alloc(1024 * 1024 - 1);
  for (let i = 0; i < 6; i++) dedup.begin(`k${i}`)({ status: 200, headers: {}, body });
  assert.equal(dedup.previous('k0'), undefined, 'the oldest answer went when the total passed 4 MB');
  assert.equal(dedup.previous('k1'), undefined);
  const newest = await dedup.previous('k5');
  assert.equal(newest?.body.length, body.length);
});

test('an attempt that produced no answer leaves no entry', () => {
  const dedup = new MessageDedup();
  dedup.begin('k')(undefined);
  assert.equal(dedup.previous('k'), undefined);
});

test('duplicates that come while the first attempt runs wait for its outcome; later ones get it at once', async () => {
  const dedup = new MessageDedup();
  assert.equal(dedup.previous('k'), undefined, 'the first time');
  const settle = dedup.begin('k');
  const waiting = [dedup.previous('k'), dedup.previous('k')];
  let settled = false;
  void Promise.all(waiting).then(() => { settled = true; });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(settled, false, 'nothing to replay before the first attempt ends');
  const outcome = { status: 200, headers: { 'content-type': 'application/json', connection: 'keep-alive' }, body: Buffer.from('{"ok":true}') };
  settle(outcome);
  assert.deepEqual(await Promise.all(waiting), [outcome, outcome]);
  assert.equal(await dedup.previous('k'), outcome);
  settle(undefined);
  assert.equal(await dedup.previous('k'), outcome, 'a second settle changes nothing');
});

test('an attempt that ends without an answer releases its waiters with none, and leaves no entry', async () => {
  const dedup = new MessageDedup();
  const settle = dedup.begin('k');
  const waiting = dedup.previous('k');
  settle(undefined);
  assert.equal(await waiting, undefined);
  assert.equal(dedup.previous('k'), undefined);
});

test('a kept answer owns memory of its own size, not a slice of a shared pool slab', () => {
  let kept: Outcome | undefined;
  const rec = recorder((o) => { kept = o; });
  rec.head(200, { 'content-type': 'application/json' });
  rec.chunk(Buffer.from('{"jsonrpc":"2.0",'));
  rec.chunk(Buffer.from('"id":1,"result":{}}'));
  rec.end(true);
  assert.equal(kept?.body.toString(), '{"jsonrpc":"2.0","id":1,"result":{}}');
  // A pooled small Buffer sits in an 8 KB ArrayBuffer that every kept answer would pin.
  assert.equal(kept?.body.buffer.byteLength, kept?.body.length);
});
