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

/** The byte-by-byte reference the guard must agree with: the depth reached, or the limit passed. */
function deepest(text: string, max: number): number | 'refused' {
  let depth = 0;
  let deepestSeen = 0;
  let inString = false;
  let escaped = false;
  for (const c of text) {
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') {
      if (++depth > max) return 'refused';
      deepestSeen = Math.max(deepestSeen, depth);
    } else if (c === '}' || c === ']') depth--;
  }
  return deepestSeen;
}

test('skipping string content agrees with a byte-by-byte scan, whatever the chunking', () => {
  const alphabet = ['{', '[', '}', ']', '"', '\\', 'a', 'b', ' ', ':', ','];
  let seed = 7;
  const random = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
  for (let round = 0; round < 2000; round++) {
    const text = Array.from({ length: 1 + random(60) }, () => alphabet[random(alphabet.length)]).join('');
    const max = 1 + random(6);
    const expected = deepest(text, max) === 'refused' ? 'refused' : 'passed';
    const guard = new JsonDepthGuard(max);
    const bytes = Buffer.from(text);
    let got = 'passed';
    try {
      for (let at = 0; at < bytes.length;) {
        const size = 1 + random(8);
        guard.feed(bytes.subarray(at, at + size));
        at += size;
      }
    } catch {
      got = 'refused';
    }
    assert.equal(got, expected, `${JSON.stringify(text)} with max ${max}`);
  }
});
