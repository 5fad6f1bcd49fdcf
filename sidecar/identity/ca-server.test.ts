// The online CA over real HTTPS: a join token gets one SVID of the right shape and works once (also
// across a restart); expired, foreign and wrong-audience tokens, unproven CSRs and renewals for another ID are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importPKCS8, SignJWT } from 'jose';
import { isMeshError } from '../../sdk/errors.ts';
import { createLogger } from '../log.ts';
import { caInit, caIssue } from './ca-files.ts';
import { requestSvid } from './ca-client.ts';
import { serveCa } from './ca-server.ts';
import { createCsr } from './csr.ts';
import { caServerId, createJoinToken } from './join-token.ts';

const TD = 'mesh.test';
const A = `spiffe://${TD}/agent/a`;
const log = createLogger('silent');

async function setup(t: { after: (fn: () => Promise<void> | void) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-ca-serve-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await caInit({ trustDomain: TD, dir: join(dir, 'ca') });
  const caDir = join(dir, 'ca');
  const bundlePem = readFileSync(join(caDir, 'ca.pem'), 'utf8');
  const caKeyPem = readFileSync(join(caDir, 'ca-key.pem'), 'utf8');
  const ca = await serveCa({ dir: caDir, host: '127.0.0.1', port: 0, svidTtlMs: 30_000, log });
  t.after(() => ca.close());
  const ask = async (id: string, auth: { token?: string; client?: { certPem: string; keyPem: string }; csrFor?: string; csrPem?: string } = {}) => {
    const csr = await createCsr(auth.csrFor ?? id);
    return {
      keyPem: csr.keyPem,
      certPem: await requestSvid({
        ca: ca.url, trustDomain: TD, bundlePem, id, csrPem: auth.csrPem ?? csr.csrPem, keyPem: csr.keyPem,
        ...(auth.token ? { token: auth.token } : {}), ...(auth.client ? { client: auth.client } : {}),
      }),
    };
  };
  return { dir, caDir, ca, bundlePem, caKeyPem, ask };
}

async function refused(promise: Promise<unknown>, status: number, reason: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isMeshError(err), String(err));
    assert.equal(err.details?.status, status, err.message);
    assert.equal(err.details?.reason, reason, err.message);
    assert.match(err.message, message);
    return true;
  });
}

test('a join token gets one SVID (one URI SAN, CA=false, both EKUs, the configured lifetime) and works once, also after a restart', async (t) => {
  const { caDir, caKeyPem, ask, ca } = await setup(t);
  const { token } = await createJoinToken({ caKeyPem, trustDomain: TD, id: A, ttlMs: 60_000 });
  const { certPem } = await ask(A, { token });
  const cert = new X509Certificate(certPem);
  assert.equal(cert.subjectAltName, `URI:${A}`);
  assert.equal(cert.ca, false);
  assert.deepEqual(cert.keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  const left = Date.parse(cert.validTo) - Date.now();
  assert.ok(left > 25_000 && left <= 31_000, `valid for ${left} ms more`);
  await refused(ask(A, { token }), 409, 'JOIN_TOKEN_USED', /already used/);
  await ca.close();
  const again = await serveCa({ dir: caDir, host: '127.0.0.1', port: 0, log });
  t.after(() => again.close());
  const bundlePem = readFileSync(join(caDir, 'ca.pem'), 'utf8');
  const csr = await createCsr(A);
  await refused(requestSvid({ ca: again.url, trustDomain: TD, bundlePem, id: A, csrPem: csr.csrPem, keyPem: csr.keyPem, token }), 409, 'JOIN_TOKEN_USED', /already used/);
});

test('expired, foreign and wrong-audience tokens are refused, naming why', async (t) => {
  const { dir, caKeyPem, ask } = await setup(t);
  const key = await importPKCS8(caKeyPem, 'ES256');
  const now = Math.floor(Date.now() / 1000);
  const jwt = (aud: string, exp: number) => new SignJWT({}).setProtectedHeader({ alg: 'ES256', typ: 'agentmesh-join+jwt' })
    .setIssuer(caServerId(TD)).setAudience(aud).setSubject(A).setJti('x'.repeat(24)).setIssuedAt(now - 120).setExpirationTime(exp).sign(key);
  await refused(ask(A, { token: await jwt(caServerId(TD), now - 60) }), 401, 'JOIN_TOKEN_INVALID', /expired/);
  await refused(ask(A, { token: await jwt(caServerId('other.test'), now + 60) }), 401, 'JOIN_TOKEN_INVALID', /wrong audience/);
  await caInit({ trustDomain: TD, dir: join(dir, 'other') });
  const foreign = await createJoinToken({ caKeyPem: readFileSync(join(dir, 'other/ca-key.pem'), 'utf8'), trustDomain: TD, id: A, ttlMs: 60_000 });
  await refused(ask(A, { token: foreign.token }), 401, 'JOIN_TOKEN_INVALID', /not signed by this CA/);
  await refused(ask(A), 401, 'JOIN_TOKEN_INVALID', /join token .* or your current SVID/);
});

test('a token for one ID does not get another; an unproven CSR is refused and does not spend the token', async (t) => {
  const { caKeyPem, ask } = await setup(t);
  const { token } = await createJoinToken({ caKeyPem, trustDomain: TD, id: A, ttlMs: 60_000 });
  await refused(ask(`spiffe://${TD}/agent/b`, { token, csrFor: `spiffe://${TD}/agent/b` }), 403, 'FORBIDDEN', /asks for spiffe:\/\/mesh\.test\/agent\/b.*may only get spiffe:\/\/mesh\.test\/agent\/a/);
  const { csrPem } = await createCsr(A);
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x01; // one bit of the signature's s value
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  await refused(ask(A, { token, csrPem: tampered }), 400, 'INVALID_REQUEST', /signature does not verify/);
  const { certPem } = await ask(A, { token });
  assert.equal(new X509Certificate(certPem).subjectAltName, `URI:${A}`);
});

test('renewal with the current SVID: the same ID is renewed, another ID is refused, an SVID of another CA is refused', async (t) => {
  const { dir, caKeyPem, ask } = await setup(t);
  const { token } = await createJoinToken({ caKeyPem, trustDomain: TD, id: A, ttlMs: 60_000 });
  const first = await ask(A, { token });
  const renewed = await ask(A, { client: first });
  assert.notEqual(new X509Certificate(renewed.certPem).serialNumber, new X509Certificate(first.certPem).serialNumber);
  await refused(ask(`spiffe://${TD}/agent/b`, { client: renewed }), 403, 'FORBIDDEN', /asks for spiffe:\/\/mesh\.test\/agent\/b/);
  await caInit({ trustDomain: TD, dir: join(dir, 'other') });
  const foreign = await caIssue({ dir: join(dir, 'other'), id: A, out: join(dir, 'foreign') });
  await refused(ask(A, { client: { certPem: readFileSync(foreign.cert, 'utf8'), keyPem: readFileSync(foreign.key, 'utf8') } }), 403, 'FORBIDDEN', /not a valid SVID of this CA/);
});
