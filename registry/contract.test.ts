// The contract every registry backend passes: one suite, run against the embedded directory backend
// (a fresh temp dir) and NATS JetStream KV (a real nats-server for this file, on a random port).
// Records are signed and verified as in a sidecar (certificates from a test CA).
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { jetstreamManager } from '@nats-io/jetstream';
import { isMeshError } from '../sdk/index.ts';
import { openRegistry, REGISTRY_CHANNEL, type Registry, type RegistryEvent, type RegistryOptions } from './index.ts';
import { startNatsServer, type NatsServer } from '../test/support/nats-server.ts';
import { waitFor } from '../test/support/wait.ts';
import { agentRecord, mcpRecord, startChild, storedAgentRecord, unique, until } from '../test/support/registry-records.ts';
import { createCa, type PemPair } from '../sidecar/identity/index.ts';
import { meshSigning, type MeshSigning } from '../test/support/record-signing.ts';

const TTL_MS = 1500;

interface Fixture {
  /** Where the registry is; without the signer and verifier (see signedOptions). */
  options(): Pick<RegistryOptions, 'nats' | 'bucket' | 'dir' | 'ttlMs'>;
  /** Writes a raw value under a key, bypassing validation (to plant a corrupt or forged record). */
  writeRaw(key: string, value: string): Promise<void>;
  readRaw(key: string): Promise<string | undefined>;
  /** Removes a key behind the registry's back (NATS: delete, then purge the whole bucket). */
  removeRaw(key: string): Promise<void>;
}

const ca: PemPair = await createCa({ trustDomain: 'mesh.test' });
const signing: MeshSigning = meshSigning(ca, 'mesh.test');

function contract(label: string, setup: () => Promise<{ fixture: Fixture; teardown: () => Promise<void> }>): void {
  describe(`registry contract: ${label}`, () => {
    let fixture: Fixture;
    let teardown: (() => Promise<void>) | undefined;
    before(async () => ({ fixture, teardown } = await setup()));
    after(async () => { await teardown?.(); });

    /** Opens a registry that is closed when the test ends. */
    const options = (): RegistryOptions => ({ ...fixture.options(), signer: signing.signer, verifier: signing.verifier });
    const open = async (t: TestContext, extra: Partial<RegistryOptions> = {}): Promise<Registry> => {
      const registry = await openRegistry({ ...options(), ...extra });
      t.after(() => registry.close());
      return registry;
    };

    test('an announced record reaches another registry; queries select by name, skill id, skill tag, tag and label', async (t) => {
      const [a, b] = [await open(t), await open(t)];
      const name = unique('res');
      await a.announce(agentRecord(name, 'i1', { skills: [{ id: 'research', tags: ['papers'] }], labels: { region: 'eu', team: 'x' } }));
      await until(b, 'the record at b', () => b.agentInstances(name).length === 1);
      const mine = (records: { name: string }[]) => records.filter((r) => r.name === name).length;
      assert.equal(b.agents({ name }).length, 1);
      assert.equal(b.agents({ name: unique('nobody') }).length, 0);
      assert.equal(mine(b.agents({ skill: 'research' })), 1, 'skill matches a skill id');
      assert.equal(mine(b.agents({ skill: 'papers' })), 1, 'skill matches a skill tag too');
      assert.equal(mine(b.agents({ tag: 'papers' })), 1);
      assert.equal(mine(b.agents({ tag: 'research' })), 0, 'tag does not match a skill id');
      assert.equal(b.agents({ name, labels: { region: 'eu' } }).length, 1);
      assert.equal(b.agents({ name, labels: { region: 'eu', team: 'x' } }).length, 1, 'all labels match');
      assert.equal(b.agents({ name, labels: { region: 'eu', team: 'y' } }).length, 0, 'one label differs');
      assert.equal(b.agents({ name, skill: 'cooking' }).length, 0);
      assert.equal(b.agents({ name }).at(0)?.card.skills?.at(0)?.id, 'research', 'the card arrives whole');
      assert.ok(a.synced() && b.synced() && a.connected() && b.connected());
    });

    test('MCP server records are listed apart from agents', async (t) => {
      const [a, b] = [await open(t), await open(t)];
      const server = unique('tools');
      await a.announce(mcpRecord(server));
      await until(b, 'the MCP record at b', () => b.mcpInstances(server).length === 1);
      assert.equal(b.mcpServers().filter((r) => r.name === server).at(0)?.tools.at(0)?.name, 'search');
      assert.equal(b.agentInstances(server).length, 0);
    });

    test('update changes the record for everyone; a bad patch is refused and changes nothing', async (t) => {
      const [a, b] = [await open(t), await open(t)];
      const name = unique('upd');
      const announcement = await a.announce(agentRecord(name));
      await until(b, 'the record at b', () => b.agentInstances(name).length === 1);
      await announcement.update({ labels: { version: '2' }, card: { name, skills: [{ id: 'summarise' }] } });
      await until(b, 'the update at b', () => b.agents({ name, skill: 'summarise', labels: { version: '2' } }).length === 1);
      await assert.rejects(announcement.update({ tools: [] }), (err) => isMeshError(err, 'REGISTRY_RECORD_INVALID'));
      await assert.rejects(announcement.update({ labels: { version: 2 as unknown as string } }), (err) => isMeshError(err, 'REGISTRY_RECORD_INVALID'));
      await announcement.update({ labels: { version: '3' } });
      await until(b, 'the next update at b', () => b.agentInstances(name).at(0)?.labels.version === '3');
    });

    test('withdraw removes the record from another view at once; close() withdraws the rest', async (t) => {
      const a = await openRegistry(options());
      t.after(() => a.close());
      const b = await open(t);
      const [one, two] = [unique('wd'), unique('wd')];
      const announcement = await a.announce(agentRecord(one));
      await a.announce(agentRecord(two));
      await until(b, 'both records at b', () => b.agentInstances(one).length === 1 && b.agentInstances(two).length === 1);
      await announcement.withdraw();
      await announcement.withdraw();
      await until(b, 'the withdrawal at b', () => b.agentInstances(one).length === 0, TTL_MS / 2);
      await Promise.all([a.close(), a.close()]);
      await a.closed;
      await until(b, 'the second record gone once a closed', () => b.agentInstances(two).length === 0, TTL_MS / 2);
      await assert.rejects(a.announce(agentRecord(unique('late'))), (err) => isMeshError(err, 'SHUTTING_DOWN'));
    });

    test('two processes see each other\'s records', async (t) => {
      const view = await open(t);
      const [mine, theirs] = [unique('parent'), unique('child')];
      await view.announce(agentRecord(mine));
      const child = startChild({ registry: fixture.options(), ca, name: theirs, instance: 'c1', expect: mine });
      t.after(() => child.stop('SIGKILL'));
      await child.line(`saw ${mine}`);
      await until(view, 'the child\'s record', () => view.agentInstances(theirs).length === 1);
      await child.stop('SIGTERM');
      await until(view, 'the child\'s record withdrawn on graceful exit', () => view.agentInstances(theirs).length === 0, TTL_MS / 2);
    });

    test('a record whose owner was SIGKILLed leaves every view within the TTL', async (t) => {
      const view = await open(t);
      const name = unique('kid');
      const child = startChild({ registry: fixture.options(), ca, name, instance: 'c1' });
      t.after(() => child.stop('SIGKILL'));
      await child.line('announced');
      await until(view, 'the child\'s record', () => view.agentInstances(name).length === 1);
      await child.stop('SIGKILL');
      // Resolved by the view's own change event, with nobody querying it. Waiting starts once the child is
      // dead: on a loaded machine a late heartbeat of the live child could otherwise revive an expired record.
      await until(view, 'the record to expire', () => view.agentInstances(name).length === 0, TTL_MS * 2);
      assert.equal(view.agents({ name }).length, 0);
    });

    test('a corrupt or unverifiable value is reported with its reason and skipped, never fatal; the other records are still served', async (t) => {
      const invalid: string[] = [];
      const events: RegistryEvent[] = [];
      const onEvent = (event: unknown): void => { events.push(event as RegistryEvent); };
      subscribe(REGISTRY_CHANNEL, onEvent);
      t.after(() => unsubscribe(REGISTRY_CHANNEL, onEvent));
      const view = await open(t, { onInvalid: (key) => invalid.push(key) });
      const good = unique('good');
      await view.announce(agentRecord(good));
      const bad = unique('bad');
      await fixture.writeRaw(`agents.${bad}.i1`, '{"kind":"agent","name":');
      await fixture.writeRaw(`agents.${bad}.i2`, JSON.stringify({ kind: 'agent', name: bad }));
      await fixture.writeRaw(`agents.${bad}.i3`, await signing.signer.sign(storedAgentRecord(unique('other'), 'i3')));
      await fixture.writeRaw(`agents.${bad}.i4`, JSON.stringify(storedAgentRecord(bad, 'i4'))); // valid, but unsigned
      await waitFor('four reports', () => invalid.filter((k) => k.includes(bad)).length === 4, 5000);
      assert.equal(view.agentInstances(bad).length, 0);
      assert.equal(view.agentInstances(good).length, 1);
      const reasons = events.filter((e) => e.type === 'rejected' && e.key.includes(bad)).map((e) => e.type === 'rejected' ? e.reason : '');
      assert.deepEqual(reasons, ['invalid', 'invalid', 'invalid', 'invalid'], 'published on the diagnostics channel with the reason');
      const fresh = await open(t);
      assert.equal(fresh.agentInstances(good).length, 1, 'a new registry opens past the corrupt values');
      // A corrupt value replacing a good one does not remove it: it stays until its own TTL.
      const planted = unique('planted');
      await fixture.writeRaw(`agents.${planted}.i1`, await signing.signer.sign(storedAgentRecord(planted, 'i1')));
      await until(fresh, 'the planted record', () => fresh.agentInstances(planted).length === 1);
      const overwrittenAt = Date.now();
      await fixture.writeRaw(`agents.${planted}.i1`, 'garbage');
      await waitFor('the garbage reported', () => events.some((e) => e.type === 'rejected' && e.key === `agents.${planted}.i1`), 5000);
      assert.equal(fresh.agentInstances(planted).length, 1, 'still served after the garbage overwrite');
      await until(fresh, 'the record aged out', () => fresh.agentInstances(planted).length === 0, TTL_MS * 2);
      assert.ok(Date.now() - overwrittenAt >= TTL_MS / 2, 'it lasted until its TTL, not until the overwrite');
    });

    test('records are refused when forged: another identity\'s name, a signature by someone else, an older replay', async (t) => {
      const events: RegistryEvent[] = [];
      const onEvent = (event: unknown): void => { events.push(event as RegistryEvent); };
      subscribe(REGISTRY_CHANNEL, onEvent);
      t.after(() => unsubscribe(REGISTRY_CHANNEL, onEvent));
      const reasonFor = (key: string) => waitFor(`a rejection of ${key}`, () => {
        const found = events.find((e) => e.type === 'rejected' && e.key === key);
        return found?.type === 'rejected' ? found.reason : undefined;
      }, 5000);
      const view = await open(t);
      const victim = unique('victim');
      const real = await view.announce(agentRecord(victim, 'real'));
      await until(view, 'the real record', () => view.agentInstances(victim).length === 1);
      // Mallory signs a record for the victim's name with her own identity: the name is not hers.
      const forged = { ...storedAgentRecord(victim, 'forged'), identity: 'spiffe://mesh.test/agent/mallory' };
      await fixture.writeRaw(`agents.${victim}.forged`, await signing.signer.sign(forged));
      assert.equal(await reasonFor(`agents.${victim}.forged`), 'name_not_owned');
      // Mallory's signature over a record claiming the victim's identity.
      const mallory = await signing.identity('spiffe://mesh.test/agent/mallory');
      const { createRecordSigner } = await import('./index.ts');
      await fixture.writeRaw(`agents.${victim}.claimed`, await createRecordSigner(() => mallory).sign(storedAgentRecord(victim, 'claimed')));
      assert.equal(await reasonFor(`agents.${victim}.claimed`), 'identity_mismatch');
      // Outside the trust domain.
      const outsider = { ...storedAgentRecord(victim, 'outside'), identity: `spiffe://elsewhere.test/agent/${victim}` };
      await fixture.writeRaw(`agents.${victim}.outside`, await signing.signer.sign(outsider));
      assert.equal(await reasonFor(`agents.${victim}.outside`), 'untrusted_chain');
      // A replay of the real record's first value after it has heart-beaten.
      const key = `agents.${victim}.real`;
      const first = await fixture.readRaw(key);
      assert.ok(first);
      await waitFor('a newer heartbeat', async () => (await fixture.readRaw(key)) !== first, TTL_MS * 2);
      await waitFor('the view has it', () => Date.parse(view.agentInstances(victim)[0]?.heartbeatAt ?? '0') > Date.parse(JSON.parse(Buffer.from(first.split('.')[1] ?? '', 'base64url').toString()).heartbeatAt as string), TTL_MS);
      await fixture.writeRaw(key, first);
      assert.equal(await reasonFor(key), 'replay');
      assert.deepEqual(view.agentInstances(victim).map((r) => r.instance), ['real']);
      await real.withdraw();
      await until(view, 'the tombstone honoured', () => view.agentInstances(victim).length === 0, TTL_MS / 2);
      await fixture.writeRaw(key, first);
      await waitFor('the replay after the tombstone refused', () => events.filter((e) => e.type === 'rejected' && e.key === key).length === 2, 5000);
      assert.equal(view.agentInstances(victim).length, 0, 'a withdrawn record cannot be brought back by a replay');
    });

    test('a raw delete or purge of a live record removes nothing before its TTL; the next heartbeat restores it', async (t) => {
      const [owner, view] = [await open(t), await open(t)];
      const name = unique('kept');
      await owner.announce(agentRecord(name));
      await until(view, 'the record', () => view.agentInstances(name).length === 1);
      let gap = false;
      const off = view.onChange(() => { if (view.agentInstances(name).length === 0) gap = true; });
      t.after(off);
      const key = `agents.${name}.i1`;
      const before = await fixture.readRaw(key);
      await fixture.removeRaw(key);
      await waitFor('the owner\'s next heartbeat', async () => ![undefined, before].includes(await fixture.readRaw(key)), TTL_MS * 2);
      assert.equal(gap, false, 'the record never left the view');
      assert.equal(view.agentInstances(name).length, 1);
    });
  });
}

contract('embedded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-registry-'));
  return {
    fixture: {
      options: () => ({ dir, ttlMs: TTL_MS }),
      writeRaw: async (key, value) => writeFileSync(join(dir, `${key}.json`), value),
      readRaw: async (key) => { try { return readFileSync(join(dir, `${key}.json`), 'utf8'); } catch { return undefined; } },
      removeRaw: async (key) => rmSync(join(dir, `${key}.json`), { force: true }),
    },
    teardown: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

contract('nats', async () => {
  const server: NatsServer = await startNatsServer();
  const bucket = unique('contract');
  let nc: NatsConnection | undefined;
  try {
    nc = await connect({ servers: server.url });
    const kv = await new Kvm(nc).create(bucket, { history: 1, ttl: TTL_MS });
    const conn = nc;
    return {
      fixture: {
        options: () => ({ nats: server.url, bucket, ttlMs: TTL_MS }),
        writeRaw: async (key, value) => { await kv.put(key, value); },
        readRaw: async (key) => { const e = await kv.get(key); return e?.operation === 'PUT' ? e.string() : undefined; },
        removeRaw: async (key) => {
          await kv.delete(key);
          await (await jetstreamManager(conn)).streams.purge(`KV_${bucket}`);
        },
      },
      teardown: async () => {
        await conn.close();
        await server[Symbol.asyncDispose]();
      },
    };
  } catch (err) {
    await nc?.close();
    await server[Symbol.asyncDispose]();
    throw err;
  }
});
