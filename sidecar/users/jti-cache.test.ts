import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JtiCache } from './jti-cache.ts';

test('a jti is new once, then the same request or a replay until it expires; the cache stays bounded', () => {
  const cache = new JtiCache(100);
  assert.equal(cache.record('a', 110, 'SendMessage|m1', 100), 'new');
  assert.equal(cache.record('a', 110, 'SendMessage|m1', 105), 'same');
  assert.equal(cache.record('a', 110, 'SendMessage|m2', 105), 'replayed');
  assert.equal(cache.record('a', 130, 'SendMessage|m2', 111), 'new', 'an expired entry no longer counts');
  for (let i = 0; i < 1000; i++) cache.record(`j${i}`, 1000, 'k', 200);
  assert.ok(cache.size <= 100);
});
