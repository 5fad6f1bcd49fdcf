// Guards sidecar/transport/undici.ts: it requires undici's internal files, so an undici upgrade that moves or
// changes them must fail here, loudly, and not in a sidecar at run time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { Pool } from './undici.ts';

const require = createRequire(import.meta.url);

test('undici is the pinned version the internal paths were checked against', () => {
  const pinned = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> }).dependencies['undici'];
  const installed = (require('undici/package.json') as { version: string }).version;
  assert.equal(pinned, '7.30.2', 'undici upgraded: re-check sidecar/transport/undici.ts (internal paths) and the RSS figure in BENCHMARKS.md, then update this pin');
  assert.equal(installed, pinned, 'installed undici differs from the pin in package.json');
});

test('the internal Pool has the index API on its prototype and is the very class undici exports', async () => {
  // Checked before undici's index is loaded (it would patch the prototype itself).
  assert.equal(require.cache[require.resolve('undici')], undefined, "undici's index is already loaded");
  const pool = new Pool('http://127.0.0.1:1');
  try {
    for (const name of ['request', 'stream', 'pipeline', 'connect', 'upgrade'] as const) {
      assert.equal(typeof pool[name], 'function', `Dispatcher.prototype.${name} missing`);
    }
  } finally {
    void pool.destroy();
  }
  const undici = await import('undici');
  assert.equal(Pool, undici.Pool, 'undici/lib/dispatcher/pool.js no longer is the exported Pool');
});
