// Connection pools per certificate generation: a swap gives new calls a new pool and closes the old
// one; an expired certificate refuses calls with IDENTITY_EXPIRED before any connection is tried.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMeshError } from '../../sdk/errors.ts';
import { createCa, issueWorkload } from '../identity/ca.ts';
import { IdentityHolder, type Identity } from '../identity/index.ts';
import { PeerPools } from './peers.ts';

async function identity(ca: { certPem: string; keyPem: string }, notAfter: Date): Promise<Identity> {
  const id = 'spiffe://mesh.test/agent/a';
  const leaf = await issueWorkload({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, id, notBefore: new Date(Date.now() - 60_000), notAfter });
  return { id, trustDomain: 'mesh.test', certPem: leaf.certPem, keyPem: leaf.keyPem, bundlePem: ca.certPem, notAfter };
}

test('a new certificate starts a new generation of pools; the old pool is closed', async (t) => {
  const ca = await createCa({ trustDomain: 'mesh.test' });
  const holder = new IdentityHolder(await identity(ca, new Date(Date.now() + 60_000)));
  const peers = new PeerPools(holder);
  t.after(() => peers.close());
  const peer = 'spiffe://mesh.test/agent/b';
  const old = peers.get('https://127.0.0.1:1', peer);
  assert.equal(peers.get('https://127.0.0.1:1', peer), old);
  holder.swap(await identity(ca, new Date(Date.now() + 120_000)));
  const fresh = peers.get('https://127.0.0.1:1', peer);
  assert.notEqual(fresh, old);
  assert.equal(old.closed, true);
  assert.equal(fresh.closed, false);
});

test('an expired certificate: calls are refused with IDENTITY_EXPIRED naming it', async (t) => {
  const ca = await createCa({ trustDomain: 'mesh.test' });
  const holder = new IdentityHolder(await identity(ca, new Date(Date.now() - 1000)));
  const peers = new PeerPools(holder);
  t.after(() => peers.close());
  assert.throws(() => peers.get('https://127.0.0.1:1', 'spiffe://mesh.test/agent/b'), (err: unknown) =>
    isMeshError(err, 'IDENTITY_EXPIRED') && err.httpStatus === 503 && err.rpcCode === -32058
    && /certificate \(spiffe:\/\/mesh\.test\/agent\/a\) expired at .*refusing to call spiffe:\/\/mesh\.test\/agent\/b/.test(err.message));
});

test('one pool per endpoint and peer ID; retain closes the pools of endpoints that left, and a later call gets a new one', async (t) => {
  const ca = await createCa({ trustDomain: 'mesh.test' });
  const peers = new PeerPools(await identity(ca, new Date(Date.now() + 60_000)));
  t.after(() => peers.close());
  const [b, c] = ['spiffe://mesh.test/agent/b', 'spiffe://mesh.test/agent/c'];
  const one = peers.get('https://127.0.0.1:1', b);
  const other = peers.get('https://127.0.0.1:1', c);
  const two = peers.get('https://127.0.0.1:2', b);
  assert.equal(new Set([one, other, two]).size, 3, 'endpoint and peer ID both tell pools apart');
  assert.equal(peers.get('https://127.0.0.1:1', b), one);
  peers.retain(new Set([PeerPools.key('https://127.0.0.1:1', c), PeerPools.key('https://127.0.0.1:2', b)]));
  assert.equal(peers.size, 2);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(one.closed, true);
  assert.equal(peers.get('https://127.0.0.1:1', c), other);
  assert.equal(peers.get('https://127.0.0.1:2', b), two);
  const again = peers.get('https://127.0.0.1:1', b);
  assert.notEqual(again, one);
  assert.equal(again.closed, false);
});
