// The embedded backend's own duties beyond the contract suite: a private directory, atomic files,
// and removing what dead processes left behind (stale records, corrupt files, temp files).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../test/support/wait.ts';
import { openEmbeddedBackend } from './embedded-backend.ts';
import type { RegistryChange } from './types.ts';
import { cleanup, storedAgentRecord } from '../test/support/registry-records.ts';

const TTL_MS = 500;

/** A fresh directory and a cleanup stack: backends registered later are closed before it is removed. */
function setup(t: TestContext): { dir: string; defer: (fn: () => unknown) => void } {
  const defer = cleanup(t);
  const root = mkdtempSync(join(tmpdir(), 'agentmesh-embedded-'));
  defer(() => rmSync(root, { recursive: true, force: true }));
  return { dir: join(root, 'registry'), defer };
}

test('creates its directory private to the user and writes one JSON file per key, no temp files left', async (t) => {
  const { dir, defer } = setup(t);
  const backend = await openEmbeddedBackend({ dir, ttlMs: TTL_MS });
  defer(() => backend.close());
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  await backend.put(storedAgentRecord('files', 'i1'));
  assert.deepEqual(readdirSync(dir), ['agents.files.i1.json']);
  await backend.delete('agents.files.i1');
  await backend.delete('agents.files.i1');
  assert.deepEqual(readdirSync(dir), []);
});

test('files left by dead processes are removed: stale records, old corrupt files, old temp files', async (t) => {
  const { dir, defer } = setup(t);
  const backend = await openEmbeddedBackend({ dir, ttlMs: TTL_MS, rescanMs: 20 });
  defer(() => backend.close());
  const old = new Date(Date.now() - 10 * TTL_MS);
  writeFileSync(join(dir, 'agents.dead.i1.json'), JSON.stringify(storedAgentRecord('dead', 'i1', old)));
  writeFileSync(join(dir, 'agents.junk.i1.json'), 'not json');
  utimesSync(join(dir, 'agents.junk.i1.json'), old, old);
  writeFileSync(join(dir, '.agents.x.i1.1234.tmp'), '{}');
  utimesSync(join(dir, '.agents.x.i1.1234.tmp'), old, old);
  writeFileSync(join(dir, 'agents.newjunk.i1.json'), 'not json either'); // recent: its writer may be alive
  await backend.put(storedAgentRecord('alive', 'i1'));

  const changes: RegistryChange[] = [];
  const invalid: string[] = [];
  const stop = new AbortController();
  defer(() => stop.abort());
  await backend.watch((c) => changes.push(c), { signal: stop.signal, onInvalid: (key) => invalid.push(key) });
  assert.deepEqual(changes.map((c) => `${c.op} ${c.key}`), ['put agents.alive.i1']);
  assert.deepEqual(invalid.sort(), ['agents.junk.i1', 'agents.newjunk.i1']);
  await waitFor('the leftovers removed', () => readdirSync(dir).sort().join() === 'agents.alive.i1.json,agents.newjunk.i1.json', 3000);
  assert.ok(!existsSync(join(dir, 'agents.dead.i1.json')));
});

test('a record whose heart stops is removed from disk once stale beyond twice the TTL', async (t) => {
  const { dir, defer } = setup(t);
  const backend = await openEmbeddedBackend({ dir, ttlMs: TTL_MS, rescanMs: 20 });
  defer(() => backend.close());
  const stop = new AbortController();
  defer(() => stop.abort());
  const changes: RegistryChange[] = [];
  await backend.watch((c) => changes.push(c), { signal: stop.signal });
  await backend.put(storedAgentRecord('stops', 'i1'));
  await waitFor('the put seen', () => changes.some((c) => c.op === 'put'));
  await waitFor('the file reaped and a delete delivered', () => changes.some((c) => c.op === 'delete' && c.key === 'agents.stops.i1'), 10 * TTL_MS);
  assert.deepEqual(readdirSync(dir), []);
});
