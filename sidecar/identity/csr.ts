// PKCS#10 for the online CA: the sidecar makes a key pair and a CSR naming its SPIFFE ID; the CA checks
// the CSR's proof of possession and the ID it asks for, and signs a leaf of the same shape as ca issue.
import { webcrypto } from 'node:crypto';
import './ca.ts'; // sets @peculiar/x509's crypto provider and reflect-metadata
import * as x509 from '@peculiar/x509';
import { MeshError } from '../../sdk/errors.ts';
import { exportKey, importKey, randomSerial } from './ca.ts';
import { parseSpiffeId } from './spiffe.ts';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const SAN_OID = '2.5.29.17';
/** A CSR is a few hundred bytes; anything far larger is refused before it is parsed. */
export const MAX_CSR_BYTES = 16 * 1024;

/** A fresh P-256 key pair and a CSR for `id` signed with it. */
export async function createCsr(id: string): Promise<{ csrPem: string; keyPem: string }> {
  parseSpiffeId(id);
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'O=agentmesh', keys, signingAlgorithm: SIGN,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id }])],
  });
  return { csrPem: csr.toString('pem'), keyPem: await exportKey(keys.privateKey) };
}

/**
 * Signs `csrPem` for `id` after checking it: it parses, its signature verifies (the caller holds the key),
 * its key is ECDSA P-256, and it asks for no URI SAN other than `id`. The leaf has exactly one URI SAN,
 * CA=false, digitalSignature, client and server auth, and is valid from `notBefore` to `notAfter`.
 */
export async function signCsr(options: { caCertPem: string; caKeyPem: string; csrPem: string; id: string; notBefore: Date; notAfter: Date }): Promise<string> {
  const csr = parseCsr(options.csrPem);
  let proven = false;
  try { proven = await csr.verify(); } catch { /* reported below */ }
  if (!proven) throw new MeshError('INVALID_REQUEST', 'the CSR signature does not verify: it must be signed with the key it carries');
  const algorithm = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (algorithm.name !== 'ECDSA' || algorithm.namedCurve !== 'P-256') {
    throw new MeshError('INVALID_REQUEST', `the CSR key must be ECDSA P-256, got ${algorithm.name ?? '?'} ${algorithm.namedCurve ?? ''}`.trim());
  }
  const asked = requestedUris(csr);
  if (asked.length > 1 || (asked[0] !== undefined && asked[0] !== options.id)) {
    throw new MeshError('FORBIDDEN', `the CSR asks for ${asked.join(', ')}, but this request may only get ${options.id}`, { details: { allowed: options.id } });
  }
  const ca = new x509.X509Certificate(options.caCertPem);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: 'O=agentmesh',
    issuer: ca.subject,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    publicKey: await csr.publicKey.export(ALG, ['verify']),
    signingKey: await importKey(options.caKeyPem),
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: options.id }], true),
      await x509.AuthorityKeyIdentifierExtension.create(ca, false),
    ],
  });
  return cert.toString('pem');
}

function parseCsr(pem: string): x509.Pkcs10CertificateRequest {
  if (pem.length > MAX_CSR_BYTES) throw new MeshError('INVALID_REQUEST', `the CSR is larger than ${MAX_CSR_BYTES} bytes`);
  try {
    return new x509.Pkcs10CertificateRequest(pem);
  } catch (err) {
    throw new MeshError('INVALID_REQUEST', 'csr: expected a PEM PKCS#10 certificate request', { cause: err });
  }
}

/** The URI SANs a CSR asks for (in its extension request attribute). */
function requestedUris(csr: x509.Pkcs10CertificateRequest): string[] {
  return csr.getExtensions(SAN_OID).flatMap((ext) => new x509.SubjectAlternativeNameExtension(ext.rawData).names.items)
    .filter((n) => n.type === 'url').map((n) => n.value);
}
