// The NATS backend through a registry outage: views keep serving what they had while nats-server is
// down (records do not age then), and once it is back announcements resume and watches see new records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { openRegistry } from './index.ts';
import { startNatsServer } from '../examples/support/nats-server.ts';
import { waitFor } from '../examples/support/wait.ts';

const TTL_MS = 1500;

function agentRecord(name: string) {
  return { kind: 'agent' as const, name, instance: 'i1', identity: `spiffe://mesh.test/agent/${name}`, endpoint: 'https://127.0.0.1:9', labels: {}, card: { name } };
}

test('registry views route from their cache through a nats-server outage and resume after it', async (t) => {
  await using server = await startNatsServer();
  const options = { nats: server.url, bucket: 'outage', ttlMs: TTL_MS };
  const owner = await openRegistry(options);
  t.after(() => owner.close());
  const view = await openRegistry(options);
  t.after(() => view.close());
  await owner.announce(agentRecord('before'));
  await waitFor('record before the outage', () => view.agentInstances('before').length === 1);

  await server.stop();
  await waitFor('the view notices the outage', () => !view.connected());
  // Longer than the TTL: without outage accounting the record would have gone stale by now.
  // (A real wall-clock wait is the point here: nothing can heartbeat while the server is down.)
  await delay(TTL_MS * 2);
  assert.equal(view.agentInstances('before').length, 1, 'still routable from the cache during the outage');

  await server.restart();
  await waitFor('the view reconnects', () => view.connected(), 15_000);
  const late = await openRegistry(options);
  t.after(() => late.close());
  await late.announce(agentRecord('after'));
  await waitFor('a record announced after the restart reaches the old view', () => view.agentInstances('after').length === 1, 10_000);
  // The owner's heartbeats resumed, so its record stays fresh past another TTL.
  await waitFor('the owner re-announced after the restart', async () => {
    const fresh = view.agentInstances('before')[0];
    return fresh !== undefined && Date.now() - Date.parse(fresh.heartbeatAt) < TTL_MS / 2;
  }, 10_000);
  assert.equal(view.agentInstances('before').length, 1);
});
