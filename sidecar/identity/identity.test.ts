// The mesh CA and workload certificates: shape (one URI SAN, CA=false, both EKUs, 24 h), files and
// modes from `ca init` / `ca issue`, and loadIdentity's checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caInit, caIssue, createCa, issueWorkload, loadIdentity, parseSpiffeId } from './index.ts';
import { runCli } from '../../test/support/sidecar-process.ts';

test('a workload certificate has exactly one URI SAN, CA=false, client and server auth, 24 h', async () => {
  const ca = await createCa({ trustDomain: 'mesh.test' });
  const leaf = await issueWorkload({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, id: 'spiffe://mesh.test/agent/a' });
  const cert = new X509Certificate(leaf.certPem);
  const root = new X509Certificate(ca.certPem);
  assert.equal(cert.subjectAltName, 'URI:spiffe://mesh.test/agent/a');
  assert.equal(cert.ca, false);
  assert.equal(root.ca, true);
  assert.ok(cert.verify(root.publicKey) && cert.checkIssued(root));
  assert.deepEqual(cert.keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const hours = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 3_600_000;
  assert.ok(hours > 23.9 && hours < 24.2, `valid for ${hours} h`);
});

test('IDs outside the CA trust domain and malformed IDs are refused', async () => {
  const ca = await createCa({ trustDomain: 'mesh.test' });
  await assert.rejects(issueWorkload({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, id: 'spiffe://other.test/agent/a' }), /trust domain 'other\.test', expected 'mesh\.test'/);
  for (const bad of ['http://mesh.test/a', 'spiffe://Mesh.Test/a', 'spiffe://mesh.test/a//b', 'spiffe://mesh.test/a?x=1', 'spiffe://mesh.test:8443/a']) {
    assert.throws(() => parseSpiffeId(bad), /not a valid SPIFFE ID/, bad);
  }
});

test('agentmesh ca init and ca issue write the files with private keys at 0600', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-ca-'));
  const init = await runCli(['ca', 'init', '--trust-domain', 'mesh.test', '--dir', join(dir, 'ca')]);
  assert.equal(init.code, 0, init.stderr);
  assert.equal(statSync(join(dir, 'ca/ca-key.pem')).mode & 0o777, 0o600);
  const again = await runCli(['ca', 'init', '--trust-domain', 'mesh.test', '--dir', join(dir, 'ca')]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists.*refusing to overwrite/);
  const issue = await runCli(['ca', 'issue', '--dir', join(dir, 'ca'), '--id', 'spiffe://mesh.test/agent/x', '--out', join(dir, 'x'), '--ttl', '2h']);
  assert.equal(issue.code, 0, issue.stderr);
  assert.equal(statSync(join(dir, 'x/key.pem')).mode & 0o777, 0o600);
  assert.equal(readFileSync(join(dir, 'x/bundle.pem'), 'utf8'), readFileSync(join(dir, 'ca/ca.pem'), 'utf8'));
  const cert = new X509Certificate(readFileSync(join(dir, 'x/cert.pem')));
  assert.ok((Date.parse(cert.validTo) - Date.now()) / 3_600_000 < 2.1);
  const identity = await loadIdentity({ cert: join(dir, 'x/cert.pem'), key: join(dir, 'x/key.pem'), bundle: join(dir, 'x/bundle.pem'), trustDomain: 'mesh.test' });
  assert.equal(identity.id, 'spiffe://mesh.test/agent/x');
  await assert.rejects(loadIdentity({ cert: join(dir, 'x/cert.pem'), key: join(dir, 'x/key.pem'), bundle: join(dir, 'x/bundle.pem'), trustDomain: 'other.test' }), /trust domain 'mesh\.test', expected 'other\.test'/);
  await assert.rejects(loadIdentity({ cert: join(dir, 'x/cert.pem'), key: join(dir, 'ca/ca-key.pem'), bundle: join(dir, 'x/bundle.pem'), trustDomain: 'mesh.test' }), /does not match/);
  const bad = await runCli(['ca', 'issue', '--dir', join(dir, 'ca'), '--id', 'spiffe://mesh.test/agent/y', '--out', join(dir, 'y'), '--ttl', 'forever']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--ttl: expected a duration/);
});

test('loadIdentity refuses expired certificates and ones from another CA', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-id-'));
  await caInit({ trustDomain: 'mesh.test', dir: join(dir, 'ca') });
  await caInit({ trustDomain: 'mesh.test', dir: join(dir, 'other') });
  const files = await caIssue({ dir: join(dir, 'other'), id: 'spiffe://mesh.test/agent/z', out: join(dir, 'z') });
  await assert.rejects(loadIdentity({ ...files, bundle: join(dir, 'ca/ca.pem'), trustDomain: 'mesh.test' }), /not signed by a CA in identity\.bundle/);
  const ca = { certPem: readFileSync(join(dir, 'ca/ca.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'ca/ca-key.pem'), 'utf8') };
  const old = await issueWorkload({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, id: 'spiffe://mesh.test/agent/old', notBefore: new Date(Date.now() - 2 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, 'old.pem'), old.certPem);
  writeFileSync(join(dir, 'old-key.pem'), old.keyPem);
  await assert.rejects(loadIdentity({ cert: join(dir, 'old.pem'), key: join(dir, 'old-key.pem'), bundle: join(dir, 'ca/ca.pem'), trustDomain: 'mesh.test' }), /expired/);
});
