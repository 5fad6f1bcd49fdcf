// The sidecar's workload identity at run time: loading and checking the certificate files, TLS options
// for the inbound server and for outbound pools, and verification of the peer's SPIFFE ID on both ends.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { ServerOptions } from 'node:https';
import { MeshError } from '../../sdk/errors.ts';
import { parseSpiffeId, parseWorkloadId, peerSpiffeId, uriSans } from './spiffe.ts';
import { peerSvidRefusal, svidRefusal } from './svid-rules.ts';

export interface Identity {
  id: string;
  trustDomain: string;
  certPem: string;
  keyPem: string;
  bundlePem: string;
  notAfter: Date;
}

/** Reads and checks cert, key and bundle: one SPIFFE URI SAN in the trust domain, valid now, chained to the bundle, key matching. */
export async function loadIdentity(files: { cert: string; key: string; bundle: string; trustDomain: string }): Promise<Identity> {
  // Read in parallel, but report the first failure in key order (cert, key, bundle), never whichever lost a race.
  const reads = await Promise.allSettled([
    readPem(files.cert, 'identity.cert'), readPem(files.key, 'identity.key'), readPem(files.bundle, 'identity.bundle'),
  ]);
  for (const r of reads) if (r.status === 'rejected') throw r.reason;
  const [certPem, keyPem, bundlePem] = reads.map((r) => (r.status === 'fulfilled' ? r.value : '')) as [string, string, string];
  const fail = (why: string): never => { throw new MeshError('IDENTITY_INVALID', `identity.cert ${files.cert}: ${why}`); };
  let cert: X509Certificate;
  try { cert = new X509Certificate(certPem); } catch { return fail('not a PEM certificate'); }
  const uris = uriSans(cert.subjectAltName);
  if (uris.length !== 1 || uris[0] === undefined) fail(`expected exactly one URI SAN, found ${uris.length}`);
  const { id } = parseWorkloadId(uris[0] ?? '', files.trustDomain);
  const refused = svidRefusal(cert.raw);
  if (refused) fail(`not a valid X509-SVID: ${refused}`);
  const notAfter = new Date(cert.validTo);
  if (Date.now() > notAfter.getTime()) fail(`expired at ${notAfter.toISOString()}`);
  if (Date.now() < new Date(cert.validFrom).getTime()) fail(`not valid before ${cert.validFrom}`);
  const roots = splitPem(bundlePem).map((pem) => new X509Certificate(pem));
  if (!roots.some((root) => cert.checkIssued(root) && cert.verify(root.publicKey))) fail(`not signed by a CA in identity.bundle ${files.bundle}`);
  let matches = false;
  try { matches = cert.checkPrivateKey(createPrivateKey(keyPem)); } catch { /* reported below */ }
  if (!matches) throw new MeshError('IDENTITY_INVALID', `identity.key ${files.key} does not match identity.cert ${files.cert}`);
  return { id, trustDomain: files.trustDomain, certPem, keyPem, bundlePem, notAfter };
}

/** https.createServer options: TLS only, a client certificate from the bundle required at the handshake. */
export function serverTlsOptions(identity: Identity): ServerOptions {
  return {
    key: identity.keyPem, cert: identity.certPem, ca: identity.bundlePem,
    requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2',
  };
}

/** Verified callers per TLS connection: the certificate cannot change on a connection, so it is read once. */
const verified = new WeakMap<TLSSocket, string>();

/** The verified caller's SPIFFE ID, or FORBIDDEN naming why the connection is refused. */
export function verifyClientPeer(socket: TLSSocket, trustDomain: string): string {
  const known = verified.get(socket);
  if (known !== undefined) return known;
  const id = verifyOnce(socket, trustDomain);
  verified.set(socket, id);
  return id;
}

function verifyOnce(socket: TLSSocket, trustDomain: string): string {
  if (!socket.authorized) {
    throw new MeshError('FORBIDDEN', `client certificate rejected: ${String(socket.authorizationError ?? 'none presented')}`);
  }
  const cert = socket.getPeerCertificate();
  const refused = peerSvidRefusal(cert);
  if (refused) throw new MeshError('FORBIDDEN', `client certificate refused: not a valid X509-SVID: ${refused}`);
  const id = peerSpiffeId(cert);
  if (!id) throw new MeshError('FORBIDDEN', 'client certificate must carry exactly one spiffe:// URI SAN');
  const peerDomain = parseSpiffeId(id).trustDomain;
  if (peerDomain !== trustDomain) {
    throw new MeshError('FORBIDDEN', `caller ${id} is in trust domain '${peerDomain}', not '${trustDomain}'`);
  }
  return id;
}

/** tls.connect / undici `connect` options: our certificate, the bundle, and the peer pinned to `expectedPeerId`. */
export function clientConnectOptions(identity: Identity, expectedPeerId: string) {
  return {
    key: identity.keyPem, cert: identity.certPem, ca: identity.bundlePem,
    rejectUnauthorized: true, minVersion: 'TLSv1.2' as const,
    // SPIFFE replaces DNS name checks: the peer must present exactly the ID its registry record claims.
    checkServerIdentity: (_host: string, cert: PeerCertificate) => checkPeerId(cert, expectedPeerId, identity.trustDomain),
  };
}

function checkPeerId(cert: PeerCertificate, expected: string, trustDomain: string): Error | undefined {
  const actual = peerSpiffeId(cert);
  const refused = peerSvidRefusal(cert);
  if (!refused && actual === expected && parseSpiffeId(actual).trustDomain === trustDomain) return undefined;
  const why = refused ? `a certificate that is not a valid X509-SVID (${refused})` : (actual ?? 'no SPIFFE ID');
  const err = new Error(`peer presented ${why}, expected ${expected}`) as NodeJS.ErrnoException;
  err.code = 'PEER_IDENTITY_MISMATCH';
  return err;
}

async function readPem(path: string, key: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new MeshError('IDENTITY_INVALID', `${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
