// The name binding follows the grants of the mesh authority (the policy's `registrations`, given to the
// verifier): rebind() admits a record refused for its name as soon as a grant names it, marks an MCP
// server's owner as granted, and drops a record whose owner lost its grant, without waiting for heartbeats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa } from '../sidecar/identity/index.ts';
import { createRecordVerifier, openRegistry, REGISTRY_CHANNEL, type Registrations, type RegistryEvent } from './index.ts';
import { agentRecord, mcpRecord } from '../test/support/registry-records.ts';
import { meshSigning } from '../test/support/record-signing.ts';
import { waitFor } from '../test/support/wait.ts';

const TD = 'mesh.test';
const IMPOSTOR = `spiffe://${TD}/agent/impostor`;

test('rebind applies changed registrations to records held and refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-rebind-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await createCa({ trustDomain: TD });
  const signing = meshSigning(ca, TD);
  let granted: Registrations | undefined;
  const rejected: RegistryEvent[] = [];
  const onEvent = (event: unknown) => { if ((event as RegistryEvent).type === 'rejected') rejected.push(event as RegistryEvent); };
  subscribe(REGISTRY_CHANNEL, onEvent);
  t.after(() => unsubscribe(REGISTRY_CHANNEL, onEvent));
  // A long TTL: nothing here may depend on a heartbeat arriving.
  const ttlMs = 60_000;
  const reader = await openRegistry({ dir, ttlMs, verifier: createRecordVerifier({ trustDomain: TD, bundle: () => ca.certPem, registrations: (id) => (granted && id === IMPOSTOR ? [granted] : []) }) });
  t.after(() => reader.close());
  const writer = await openRegistry({ dir, ttlMs, signer: signing.signer, verifier: signing.verifier, onInvalid: () => undefined });
  t.after(() => writer.close());

  await writer.announce({ ...agentRecord('helper'), identity: IMPOSTOR });
  await writer.announce({ ...mcpRecord('stats'), identity: IMPOSTOR });
  await writer.announce(agentRecord('impostor'));
  await waitFor('the impostor\'s own name is held and helper refused', () => reader.agentInstances('impostor').length === 1
    && rejected.some((e) => e.type === 'rejected' && e.key === 'agents.helper.i1' && e.reason === 'name_not_owned'));
  assert.deepEqual(reader.agentInstances('helper'), []);
  assert.equal(reader.mcpInstances('stats').length, 1); // an MCP server name is its fronting sidecar's by default

  granted = { agents: ['helper'], mcp: ['stats'] };
  await reader.rebind();
  assert.deepEqual(reader.agentInstances('helper').map((r) => r.identity), [IMPOSTOR], 'admitted at once, not at the next heartbeat');
  // Granted now: another identity claiming stats without a grant would lose to it (mcp-owners.ts).
  await writer.announce({ ...mcpRecord('stats', 'i2'), identity: `spiffe://${TD}/agent/other` });
  await waitFor('the ungranted claimant is refused', () => rejected.some((e) => e.type === 'rejected' && e.reason === 'mcp_name_conflict'));
  assert.deepEqual(reader.mcpInstances('stats').map((r) => r.identity), [IMPOSTOR]);

  granted = undefined;
  const before = rejected.length;
  await reader.rebind();
  assert.deepEqual(reader.agentInstances('helper'), [], 'dropped at once, not when its TTL runs out');
  assert.ok(rejected.slice(before).some((e) => e.type === 'rejected' && e.key === 'agents.helper.i1' && e.reason === 'name_not_owned' && /no longer owns/.test(e.error)));
  assert.equal(reader.agentInstances('impostor').length, 1, 'a record owned by the default rule stays');

  // Granted again: the value the reader dropped is admitted again.
  granted = { agents: ['helper'], mcp: [] };
  await reader.rebind();
  assert.equal(reader.agentInstances('helper').length, 1);
});
