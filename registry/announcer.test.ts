// The announcer on a real (embedded) backend: first put awaited, heartbeats, update, withdraw, refusals.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMeshError } from '../sdk/index.ts';
import { waitFor } from '../test/support/wait.ts';
import { announce } from './announcer.ts';
import { openEmbeddedBackend } from './embedded-backend.ts';
import type { RegistryRecord } from './record.ts';
import { agentRecord, cleanup, mcpRecord } from '../test/support/registry-records.ts';

async function setup(t: TestContext, ttlMs: number) {
  const defer = cleanup(t);
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-announcer-'));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  const backend = await openEmbeddedBackend({ dir, ttlMs });
  defer(() => backend.close());
  const read = (key: string): RegistryRecord | undefined => {
    try { return JSON.parse(readFileSync(join(dir, `${key}.json`), 'utf8')) as RegistryRecord; } catch { return undefined; }
  };
  return { dir, backend, read, defer };
}

test('the first put is done when announce resolves; heartbeats then move heartbeatAt, not startedAt', async (t) => {
  const { backend, read, defer } = await setup(t, 300);
  const a = await announce(backend, agentRecord('hb'), { ttlMs: 300 });
  defer(() => a.withdraw());
  const first = read(a.key);
  assert.ok(first, 'written before announce resolved');
  assert.ok(Date.parse(first.heartbeatAt) >= Date.parse(first.startedAt));
  await waitFor('a heartbeat', () => read(a.key)?.heartbeatAt !== first.heartbeatAt, 3000);
  assert.equal(read(a.key)?.startedAt, first.startedAt);
});

test('update rewrites the record; withdraw writes a newer tombstone, twice is fine, and later updates are refused', async (t) => {
  const { dir, backend, read } = await setup(t, 60_000);
  const a = await announce(backend, agentRecord('up'), { ttlMs: 60_000 });
  await a.update({ labels: { v: '2' }, card: { name: 'up', skills: [{ id: 'new' }] } });
  const updated = read(a.key);
  assert.equal(updated?.labels.v, '2');
  assert.equal(updated?.kind === 'agent' ? updated.card.skills?.[0]?.id : undefined, 'new');
  await a.withdraw();
  await a.withdraw();
  assert.deepEqual(readdirSync(dir), ['agents.up.i1.json']);
  const tombstone = read(a.key);
  assert.equal(tombstone?.withdrawn, true, 'readers ignore raw deletes, so withdrawal is a signed tombstone');
  assert.ok(Date.parse(tombstone.heartbeatAt) > Date.parse(updated?.heartbeatAt ?? ''), 'newer than the last heartbeat');
  await assert.rejects(a.update({ labels: {} }), (err) => isMeshError(err, 'INTERNAL'));
});

test('invalid records and patches are refused before anything is written', async (t) => {
  const { dir, backend, read, defer } = await setup(t, 60_000);
  await assert.rejects(announce(backend, { ...agentRecord('bad'), endpoint: 'http://x' }, { ttlMs: 60_000 }), (err) => isMeshError(err, 'REGISTRY_RECORD_INVALID'));
  assert.deepEqual(readdirSync(dir), []);
  const m = await announce(backend, mcpRecord('tools'), { ttlMs: 60_000 });
  defer(() => m.withdraw());
  await assert.rejects(m.update({ card: { name: 'tools' } }), (err) => isMeshError(err, 'REGISTRY_RECORD_INVALID'));
  await assert.rejects(m.update({ tools: [{ name: 42 as unknown as string }] }), (err) => isMeshError(err, 'REGISTRY_RECORD_INVALID'));
  const stored = read(m.key);
  assert.equal(stored?.kind === 'mcp' ? stored.tools[0]?.name : undefined, 'search', 'unchanged by the refused patches');
});

test('an aborted announce rejects with ABORTED and leaves nothing behind', async (t) => {
  const { dir, backend } = await setup(t, 60_000);
  await assert.rejects(announce(backend, agentRecord('ab'), { ttlMs: 60_000, signal: AbortSignal.abort() }), (err) => isMeshError(err, 'ABORTED'));
  await waitFor('nothing on disk', () => readdirSync(dir).length === 0, 2000);
});
