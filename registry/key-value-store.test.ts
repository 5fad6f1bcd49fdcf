// openKeyValueStore on both backends (a real nats-server on a random port, and a directory): get/put,
// and create-if-absent, which the mesh-wide SendMessage dedup record relies on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNatsServer, type NatsServer } from '../test/support/nats-server.ts';
import { openKeyValueStore, type KeyValueStore } from './key-value-store.ts';

describe('openKeyValueStore', () => {
  let nats: NatsServer;
  let dir: string;
  const stores: KeyValueStore[] = [];
  before(async () => {
    nats = await startNatsServer();
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-kv-'));
  });
  after(async () => {
    await Promise.allSettled(stores.map((s) => s.close()));
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const backend of ['nats', 'dir'] as const) {
    test(`${backend}: create stores only where nothing live is, and says whether it did`, async () => {
      const bucket = `kv${Math.random().toString(36).slice(2, 10)}`;
      const open = () => openKeyValueStore(backend === 'nats' ? { nats: nats.url, bucket, ttlMs: 60_000 } : { dir, bucket, ttlMs: 60_000 });
      const a = await open();
      const b = await open();
      stores.push(a, b);
      assert.equal(await a.create('d.key/1', 'i0'), true);
      assert.equal(await b.create('d.key/1', 'i1'), false, 'a second creator, through another handle, is told it exists');
      assert.equal(await b.get('d.key/1'), 'i0');
      assert.equal(await b.create('other key', 'i1'), true, 'unsafe characters are encoded, not refused');
      await a.put('p', 'v');
      assert.equal(await b.get('p'), 'v');
    });
  }
});
