import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dedupKey, MessageDedup } from './dedup.ts';

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
