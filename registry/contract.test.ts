// The contract every registry backend passes: the same suite runs against NATS JetStream KV (a real
// nats-server on a random port) and the embedded directory backend.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { openRegistry, type Registry, type RegistryOptions } from './index.ts';
import { startNatsServer, type NatsServer } from '../examples/support/nats-server.ts';
import { waitFor } from '../examples/support/wait.ts';

const TTL_MS = 1500;
const ROOT = new URL('..', import.meta.url).pathname;

interface Backend {
  options(): RegistryOptions;
  /** Writes a raw value under a key, bypassing validation (to plant a corrupt record). */
  writeRaw(key: string, value: string): Promise<void>;
}

let n = 0;
const unique = (prefix: string) => `${prefix}${process.pid}x${n++}`;

function agentRecord(name: string, instance: string, extra: { skills?: { id: string; tags?: string[] }[]; labels?: Record<string, string> } = {}) {
  return {
    kind: 'agent' as const, name, instance, identity: `spiffe://mesh.test/agent/${name}`, endpoint: 'https://127.0.0.1:9',
    labels: extra.labels ?? {}, card: { name, skills: extra.skills ?? [] },
  };
}

function contract(label: string, setup: () => Promise<{ backend: Backend; teardown: () => Promise<void> }>) {
  describe(`registry contract: ${label}`, () => {
    let backend: Backend;
    let teardown: () => Promise<void>;
    const open: Registry[] = [];
    const openOne = async () => {
      const r = await openRegistry(backend.options());
      open.push(r);
      return r;
    };

    before(async () => ({ backend, teardown } = await setup()));
    after(async () => {
      await Promise.allSettled(open.map((r) => r.close()));
      await teardown();
    });

    test('an announced record is visible to another registry, and queries select by name, skill, tag and label', async () => {
      const a = await openOne();
      const b = await openOne();
      const name = unique('res');
      await a.announce(agentRecord(name, 'i1', { skills: [{ id: 'research', tags: ['papers'] }], labels: { region: 'eu' } }));
      await waitFor('record at b', () => b.agentInstances(name).length === 1);
      assert.equal(b.agents({ name }).length, 1);
      assert.equal(b.agents({ skill: 'research' }).filter((r) => r.name === name).length, 1);
      assert.equal(b.agents({ skill: 'papers' }).filter((r) => r.name === name).length, 1, 'skill matches a tag too');
      assert.equal(b.agents({ tag: 'papers', name }).length, 1);
      assert.equal(b.agents({ tag: 'research', name }).length, 0, 'tag does not match a skill id');
      assert.equal(b.agents({ labels: { region: 'eu' }, name }).length, 1);
      assert.equal(b.agents({ labels: { region: 'us' }, name }).length, 0);
      assert.equal(b.agents({ skill: 'cooking', name }).length, 0);
    });

    test('update changes the record for everyone; withdraw removes it at once', async () => {
      const a = await openOne();
      const b = await openOne();
      const name = unique('upd');
      const ann = await a.announce(agentRecord(name, 'i1'));
      await waitFor('record at b', () => b.agentInstances(name).length === 1);
      await ann.update({ labels: { version: '2' } });
      await waitFor('update at b', () => b.agentInstances(name)[0]?.labels.version === '2');
      await ann.withdraw();
      await waitFor('withdrawal at b', () => b.agentInstances(name).length === 0, TTL_MS / 2);
    });

    test('two instances of one agent are both listed', async () => {
      const a = await openOne();
      const b = await openOne();
      const name = unique('two');
      await a.announce(agentRecord(name, 'i1'));
      await b.announce(agentRecord(name, 'i2'));
      await waitFor('both at a', () => a.agentInstances(name).length === 2);
      await waitFor('both at b', () => b.agentInstances(name).length === 2);
    });

    test('a record from another process is seen, and vanishes within the TTL once that process is SIGKILLed', async () => {
      const view = await openOne();
      const name = unique('kid');
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/fixtures/registry-child.ts'),
        JSON.stringify({ ...backend.options(), name, instance: 'c1' })], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      try {
        await waitFor('child record', () => view.agentInstances(name).length === 1, 15_000);
        const changes: number[] = [];
        const off = view.onChange(() => changes.push(Date.now()));
        const killedAt = Date.now();
        child.kill('SIGKILL');
        await exited;
        await waitFor('record gone', () => view.agentInstances(name).length === 0, TTL_MS * 3);
        off();
        assert.ok(Date.now() - killedAt <= TTL_MS + 500, 'gone within the TTL of its last heartbeat');
        assert.ok(changes.length > 0, 'the view announced the expiry to its listeners');
      } finally {
        child.kill('SIGKILL');
      }
    });

    test('a corrupt record is reported and skipped; the others are still served', async () => {
      const invalid: string[] = [];
      const view = await openRegistry({ ...backend.options(), onInvalid: (key) => invalid.push(key) });
      open.push(view);
      const good = unique('good');
      await view.announce(agentRecord(good, 'i1'));
      const bad = unique('bad');
      await backend.writeRaw(`agents.${bad}.i1`, '{"kind":"agent","name":');
      await backend.writeRaw(`agents.${bad}.i2`, JSON.stringify({ kind: 'agent', name: bad }));
      await waitFor('corrupt records reported', () => invalid.filter((k) => k.includes(bad)).length === 2);
      assert.equal(view.agentInstances(bad).length, 0);
      assert.equal(view.agentInstances(good).length, 1);
      const fresh = await openOne();
      await waitFor('a new registry opens past the corrupt records', () => fresh.agentInstances(good).length === 1);
    });

    test('close() withdraws the records it announced', async () => {
      const a = await openRegistry(backend.options());
      const b = await openOne();
      const name = unique('bye');
      await a.announce(agentRecord(name, 'i1'));
      await waitFor('record at b', () => b.agentInstances(name).length === 1);
      await a.close();
      await a.close();
      await a.closed;
      await waitFor('gone at b', () => b.agentInstances(name).length === 0, TTL_MS / 2);
    });
  });
}

contract('embedded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-registry-'));
  return {
    backend: {
      options: () => ({ dir, ttlMs: TTL_MS }),
      writeRaw: async (key, value) => writeFileSync(join(dir, `${key}.json`), value),
    },
    teardown: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

contract('nats', async () => {
  const server: NatsServer = await startNatsServer();
  const bucket = unique('contract');
  const nc = await connect({ servers: server.url });
  const kv = await new Kvm(nc).create(bucket, { history: 1, ttl: TTL_MS });
  return {
    backend: {
      options: () => ({ nats: server.url, bucket, ttlMs: TTL_MS }),
      writeRaw: async (key, value) => { await kv.put(key, value); },
    },
    teardown: async () => {
      await nc.close();
      await server[Symbol.asyncDispose]();
    },
  };
});
