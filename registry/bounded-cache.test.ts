// BoundedCache: at its bound the oldest entry goes, one at a time, and the rest stay.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BoundedCache } from './bounded-cache.ts';

test('a full cache evicts only its oldest entry', () => {
  const cache = new BoundedCache<string, number>(3);
  for (const [k, v] of [['a', 1], ['b', 2], ['c', 3]] as const) cache.set(k, v);
  cache.set('d', 4);
  assert.equal(cache.size, 3);
  assert.equal(cache.get('a'), undefined);
  assert.deepEqual(['b', 'c', 'd'].map((k) => cache.get(k)), [2, 3, 4]);
  cache.set('b', 20); // an update of a held key evicts nothing
  assert.deepEqual(['b', 'c', 'd'].map((k) => cache.get(k)), [20, 3, 4]);
  cache.clear();
  assert.equal(cache.size, 0);
});
