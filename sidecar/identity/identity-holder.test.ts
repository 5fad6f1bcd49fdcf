// The identity holder: swaps only within one SPIFFE ID, tells listeners, and gives /readyz reasons when
// less than a quarter of the certificate's lifetime is left (with the renewal error) and after expiry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCa, issueWorkload } from './ca.ts';
import { IdentityHolder } from './identity-holder.ts';
import type { Identity } from './tls.ts';

async function identity(ca: { certPem: string; keyPem: string }, id: string, notBefore: Date, notAfter: Date): Promise<Identity> {
  const leaf = await issueWorkload({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, id, notBefore, notAfter });
  return { id, trustDomain: 'mesh.test', certPem: leaf.certPem, keyPem: leaf.keyPem, bundlePem: ca.certPem, notAfter };
}

test('notReady: nothing while more than a quarter is left, a reason with the renewal error below it, and after expiry', async () => {
  const ca = await createCa({ trustDomain: 'mesh.test' });
  const start = Date.now();
  const holder = new IdentityHolder(await identity(ca, 'spiffe://mesh.test/agent/a', new Date(start), new Date(start + 100_000)), start);
  assert.deepEqual(holder.notReady(start + 70_000), []);
  assert.match(holder.notReady(start + 80_000).join(), /certificate spiffe:\/\/mesh\.test\/agent\/a expires in 20s$/);
  holder.failing('identity.ca https://ca:1: ECONNREFUSED');
  assert.match(holder.notReady(start + 80_000).join(), /expires in 20s; renewal failing: identity\.ca https:\/\/ca:1: ECONNREFUSED/);
  assert.match(holder.notReady(start + 100_000).join(), /expired at .*; renewal failing/);
});

test('swap: listeners see the new and the old identity; another SPIFFE ID is refused and the old one kept', async () => {
  const ca = await createCa({ trustDomain: 'mesh.test' });
  const now = Date.now();
  const first = await identity(ca, 'spiffe://mesh.test/agent/a', new Date(now - 1000), new Date(now + 60_000));
  const holder = new IdentityHolder(first);
  const seen: [string, string][] = [];
  holder.onChange((next, previous) => seen.push([next.certPem, previous.certPem]));
  const second = await identity(ca, 'spiffe://mesh.test/agent/a', new Date(now - 1000), new Date(now + 120_000));
  holder.failing('earlier failure');
  holder.swap(second);
  assert.deepEqual(seen, [[second.certPem, first.certPem]]);
  assert.equal(holder.current(), second);
  assert.deepEqual(holder.notReady(), []);
  const other = await identity(ca, 'spiffe://mesh.test/agent/b', new Date(now - 1000), new Date(now + 120_000));
  assert.throws(() => holder.swap(other), /new certificate is for spiffe:\/\/mesh\.test\/agent\/b, but this sidecar is spiffe:\/\/mesh\.test\/agent\/a/);
  assert.equal(holder.current(), second);
  let stopped = false;
  holder.onClose(() => { stopped = true; });
  holder.close();
  holder.close();
  assert.ok(stopped);
});
