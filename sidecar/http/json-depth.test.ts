import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonDepthGuard } from './json-depth.ts';

const feedAll = (guard: JsonDepthGuard, text: string, chunk = 7) => {
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += chunk) guard.feed(bytes.subarray(i, i + chunk));
};

test('nesting up to the limit passes, one level more is refused', () => {
  assert.doesNotThrow(() => feedAll(new JsonDepthGuard(4), '{"a":[{"b":[1]}]}'));
  assert.throws(() => feedAll(new JsonDepthGuard(3), '{"a":[{"b":[1]}]}'), /deeper than 3 levels/);
});

test('brackets inside strings, escaped quotes and chunk boundaries do not count', () => {
  const text = JSON.stringify({ s: '[[[[{{{{ \\" ]]]] "', t: ['\\', '"[['] });
  for (const size of [1, 2, 3, 64]) assert.doesNotThrow(() => feedAll(new JsonDepthGuard(2), text, size), `chunks of ${size}`);
});

test('a 10,000-deep body is refused early, at the byte that goes too deep', () => {
  const guard = new JsonDepthGuard(64);
  const deep = Buffer.from('['.repeat(10_000));
  let fed = 0;
  assert.throws(() => {
    for (let i = 0; i < deep.length; i += 16) { guard.feed(deep.subarray(i, i + 16)); fed += 16; }
  }, /limits\.maxJsonDepth/);
  assert.ok(fed < 100, `refused after ${fed} bytes`);
});
