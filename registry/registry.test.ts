// The facade's own rules, on the embedded backend: configuration refused up front, AbortSignal
// handling (before open: ABORTED; after open: close), and close() being idempotent and final.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMeshError } from '../sdk/index.ts';
import { openRegistry } from './index.ts';
import { agentRecord, cleanup } from '../test/support/registry-records.ts';

/** The files in `dir` that hold withdrawn records (tombstones); any other file fails the test. */
function tombstones(dir: string): string[] {
  const files = readdirSync(dir);
  for (const f of files) assert.equal((JSON.parse(readFileSync(join(dir, f), 'utf8')) as { withdrawn?: boolean }).withdrawn, true, `${f} is a tombstone`);
  return files;
}

/** A fresh directory, removed after everything the test registers later with `defer`. */
function tempDir(t: TestContext): { dir: string; defer: (fn: () => unknown) => void } {
  const defer = cleanup(t);
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-facade-'));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, defer };
}

test('configuration is refused before anything starts', async (t) => {
  const file = join(tempDir(t).dir, 'a-file');
  writeFileSync(file, '');
  await assert.rejects(openRegistry({ ttlMs: 1000 }), (err) => isMeshError(err, 'CONFIG_INVALID'));
  await assert.rejects(openRegistry({ ttlMs: 0, dir: '/nonexistent' }), (err) => isMeshError(err, 'CONFIG_INVALID'));
  await assert.rejects(openRegistry({ ttlMs: 1000, nats: 'nats://127.0.0.1:1', bucket: 'no.dots' }), (err) => isMeshError(err, 'CONFIG_INVALID'));
  await assert.rejects(openRegistry({ ttlMs: 1000, dir: join(file, 'registry') }), (err) => isMeshError(err, 'REGISTRY_UNAVAILABLE'));
});

test('an already-aborted signal refuses to open; aborting later closes and withdraws', async (t) => {
  const { dir, defer } = tempDir(t);
  await assert.rejects(openRegistry({ ttlMs: 60_000, dir, signal: AbortSignal.abort() }), (err) => isMeshError(err, 'ABORTED'));
  const controller = new AbortController();
  const registry = await openRegistry({ ttlMs: 60_000, dir, signal: controller.signal });
  defer(() => registry.close());
  assert.equal(registry.backend, 'embedded');
  await registry.announce(agentRecord('aborted'));
  assert.equal(readdirSync(dir).length, 1);
  controller.abort();
  await registry.closed;
  assert.deepEqual(tombstones(dir), ['agents.aborted.i1.json']);
  await registry.close();
  await assert.rejects(registry.announce(agentRecord('after')), (err) => isMeshError(err, 'SHUTTING_DOWN'));
});

test('await using closes the registry', async (t) => {
  const { dir } = tempDir(t);
  let closed: Promise<void> | undefined;
  {
    await using registry = await openRegistry({ ttlMs: 60_000, dir });
    closed = registry.closed;
    await registry.announce(agentRecord('scoped'));
  }
  await closed;
  assert.deepEqual(tombstones(dir), ['agents.scoped.i1.json']);
});
