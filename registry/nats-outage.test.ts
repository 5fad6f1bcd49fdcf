// The NATS backend through outages, against a real nats-server on a random port: views keep routing
// from their cache while the server is down (records do not age then), announcements are re-put as
// soon as it is back, watches resume, and a server that returns without its data is repopulated.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { isMeshError } from '../sdk/index.ts';
import { openRegistry, type Registry, type RegistryOptions } from './index.ts';
import { startNatsServer, type NatsServer } from '../test/support/nats-server.ts';
import { waitFor } from '../test/support/wait.ts';
import { agentRecord, cleanup, storedAgentRecord, unique, until } from '../test/support/registry-records.ts';

/** A nats-server and registries for one test; registries close before the server stops. */
async function setup(t: TestContext): Promise<{ nats: NatsServer; open: (options: RegistryOptions) => Promise<Registry> }> {
  const defer = cleanup(t);
  const nats = await startNatsServer();
  defer(() => nats[Symbol.asyncDispose]());
  return {
    nats,
    async open(options) {
      const registry = await openRegistry(options);
      defer(() => registry.close());
      return registry;
    },
  };
}

test('views route from their cache through an outage; afterwards watches resume and new records arrive', async (t) => {
  const ttlMs = 1500;
  const { nats, open } = await setup(t);
  const options = { nats: nats.url, bucket: unique('outage'), ttlMs };
  const owner = await open(options);
  const view = await open(options);
  const [before, after] = [unique('before'), unique('after')];
  await owner.announce(agentRecord(before));
  const seen = await until(view, 'the record before the outage', () => view.agentInstances(before)[0]);

  await nats.stop();
  await waitFor('the view to notice the outage', () => !view.connected() && !owner.connected());
  // The record's last heartbeat grows older than the TTL while nobody can heartbeat: it stays routable.
  await waitFor('more than a TTL since the last heartbeat', () => Date.now() - Date.parse(seen.heartbeatAt) > ttlMs * 1.5, ttlMs * 3);
  assert.equal(view.agentInstances(before).length, 1, 'still routable from the cache during the outage');
  assert.equal(view.agents({ name: before }).length, 1);

  await nats.restart();
  await waitFor('the view to reconnect', () => view.connected(), 15_000);
  const late = await open(options);
  await late.announce(agentRecord(after));
  await until(view, 'a record announced after the restart', () => view.agentInstances(after).length === 1);
  await until(late, 'the old record, re-put by its owner, at a new registry', () => late.agentInstances(before).length === 1);
  // Withdrawals reach views again.
  await owner.close();
  await until(view, 'the withdrawn record gone', () => view.agentInstances(before).length === 0, ttlMs);
});

test('an announcer re-puts its record as soon as the server is back, not at the next heartbeat', async (t) => {
  const ttlMs = 60_000; // heartbeats every 20 s: a put within seconds of the restart can only be the re-put
  const { nats, open } = await setup(t);
  const options = { nats: nats.url, bucket: unique('reput'), ttlMs };
  const owner = await open(options);
  const view = await open(options);
  const name = unique('reput');
  await owner.announce(agentRecord(name));
  const first = await until(view, 'the record', () => view.agentInstances(name)[0]);
  await nats.stop();
  await waitFor('the owner to notice the outage', () => !owner.connected());
  const restartedAt = Date.now();
  await nats.restart();
  // heartbeatAt moves only on a put; the view hears of it though nothing else changed.
  await waitFor('a re-put after the restart', () => {
    const current = view.agentInstances(name)[0];
    return current !== undefined && Date.parse(current.heartbeatAt) >= restartedAt;
  }, 10_000);
  assert.equal(view.agentInstances(name)[0]?.startedAt, first.startedAt, 'the same announcement, re-put');
});

test('a server that returns without its data gets the bucket back, re-announced; what vanished ages out, what is live never blinks', async (t) => {
  const ttlMs = 4000;
  const { nats, open } = await setup(t);
  const bucket = unique('lost');
  const options = { nats: nats.url, bucket, ttlMs };
  const owner = await open(options);
  const view = await open(options);
  const [kept, orphan] = [unique('kept'), unique('orphan')];
  await owner.announce(agentRecord(kept));
  // A record with no live owner: written once, never heart-beaten.
  const nc = await connect({ servers: nats.url });
  try {
    const kv = await new Kvm(nc).open(bucket);
    await kv.put(`agents.${orphan}.i1`, JSON.stringify(storedAgentRecord(orphan, 'i1')));
    await until(view, 'both records', () => view.agentInstances(kept).length === 1 && view.agentInstances(orphan).length === 1);
    // Lose the data, then bounce the server so every client reconnects to an empty JetStream.
    await (await jetstreamManager(nc)).streams.delete(`KV_${bucket}`);
  } finally {
    await nc.close();
  }
  await nats.stop();
  await nats.restart();
  // The live record stays routable throughout (its owner re-announces well within the TTL) …
  let blinked = false;
  const watchKept = setInterval(() => { if (view.agentInstances(kept).length === 0) blinked = true; }, 20);
  t.after(() => clearInterval(watchKept));
  // … while the orphan, missing from the new snapshot and never re-announced, ages out within its TTL.
  await until(view, 'the orphan aged out after reconnecting', () => view.agentInstances(orphan).length === 0, 15_000);
  clearInterval(watchKept);
  assert.equal(blinked, false, 'the live record was never missing from the view');
  const fresh = await open(options);
  await until(fresh, 'the kept record re-announced into the new bucket', () => fresh.agentInstances(kept).length === 1, 15_000);
  await until(view, 'the re-announced record back at the old view', () => view.agentInstances(kept).length === 1);
});

test('opening fails with REGISTRY_UNAVAILABLE naming the URL when no server is there', async () => {
  const port = await new Promise<number>((resolve, reject) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
  const url = `nats://127.0.0.1:${port}`;
  await assert.rejects(openRegistry({ nats: url, ttlMs: 1000, timeoutMs: 2000 }), (err) => {
    assert.ok(isMeshError(err, 'REGISTRY_UNAVAILABLE'), String(err));
    assert.match(err.message, new RegExp(url.replaceAll('.', '\\.')));
    return true;
  });
});

test('opening stops when its signal aborts', async (t) => {
  const { nats } = await setup(t);
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(openRegistry({ nats: nats.url, ttlMs: 1000, signal: controller.signal }), (err) => isMeshError(err, 'ABORTED'));
});
