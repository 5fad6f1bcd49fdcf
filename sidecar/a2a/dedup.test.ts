import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dedupKey, MessageDedup } from './dedup.ts';

const send = (messageId: string, method = 'SendMessage') =>
  Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: { message: { messageId, role: 'ROLE_USER', parts: [] } } }));

test('the key comes from the header the calling sidecar set, else from the body', () => {
  assert.equal(dedupKey('spiffe://t/a', 'echo', 'm-1', undefined), 'spiffe://t/a echo m-1');
  assert.equal(dedupKey('spiffe://t/a', 'echo', '', send('m-2')), undefined, "'' says: not a SendMessage");
  assert.equal(dedupKey('spiffe://t/a', 'echo', undefined, send('m-3')), 'spiffe://t/a echo m-3');
  assert.equal(dedupKey('spiffe://t/a', 'echo', undefined, send('m-4', 'message/send')), 'spiffe://t/a echo m-4');
  assert.equal(dedupKey('spiffe://t/a', 'echo', undefined, send('m-5', 'GetTask')), undefined);
  assert.equal(dedupKey('spiffe://t/a', 'echo', undefined, Buffer.from('{not json')), undefined);
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
