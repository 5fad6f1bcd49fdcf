// The mesh CA: an ECDSA P-256 root and workload certificates with exactly one URI SAN (the SPIFFE
// ID), built with @peculiar/x509 on Node's WebCrypto. Pure: PEM in, PEM out; files live in ca-files.ts.
import { webcrypto } from 'node:crypto';
import 'reflect-metadata'; // @peculiar/x509 resolves its ASN.1 services through tsyringe, which needs it
import * as x509 from '@peculiar/x509';
import { MeshError } from '../../sdk/errors.ts';
import { parseSpiffeId, parseWorkloadId } from './spiffe.ts';

type CryptoKey = webcrypto.CryptoKey;
const crypto = webcrypto;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export interface Validity {
  notBefore?: Date;
  notAfter?: Date;
}

/** A self-signed root for `trustDomain` (default validity 10 years). */
export async function createCa(options: { trustDomain: string } & Validity): Promise<PemPair> {
  const { trustDomain } = parseSpiffeId(`spiffe://${options.trustDomain}`);
  const keys = await crypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=agentmesh CA ${trustDomain}, O=agentmesh`,
    notBefore,
    notAfter: options.notAfter ?? new Date(notBefore.getTime() + 3650 * DAY),
    keys,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKey(keys.privateKey) };
}

/** A workload certificate for `id`, signed by the CA (default validity 24 h); `id` must be in the CA's trust domain. */
export async function issueWorkload(options: { caCertPem: string; caKeyPem: string; id: string; ttlMs?: number } & Validity): Promise<PemPair> {
  parseWorkloadId(options.id, caTrustDomain(new x509.X509Certificate(options.caCertPem)));
  return signWorkload(options);
}

/**
 * Signs a leaf for any well-formed SPIFFE ID, without the trust-domain check — for tests that need a
 * certificate the mesh must refuse. Use issueWorkload everywhere else.
 */
export async function signWorkload(options: { caCertPem: string; caKeyPem: string; id: string; ttlMs?: number } & Validity): Promise<PemPair> {
  const ca = new x509.X509Certificate(options.caCertPem);
  const { id } = parseSpiffeId(options.id);
  const caKey = await importKey(options.caKeyPem);
  const keys = await crypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = options.notAfter ?? new Date(notBefore.getTime() + 60_000 + (options.ttlMs ?? DAY));
  if (notAfter <= notBefore) throw new MeshError('IDENTITY_INVALID', 'certificate validity must end after it starts (--ttl)');
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: 'O=agentmesh',
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id }], true),
      await x509.AuthorityKeyIdentifierExtension.create(ca, false),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKey(keys.privateKey) };
}

/** The trust domain a mesh CA certificate was made for (its URI SAN `spiffe://TD`). */
export function caTrustDomain(ca: x509.X509Certificate): string {
  const san = ca.getExtension(x509.SubjectAlternativeNameExtension);
  const uri = san?.names.items.find((n) => n.type === 'url')?.value;
  if (!uri) throw new MeshError('IDENTITY_INVALID', 'the CA certificate has no spiffe:// URI SAN naming its trust domain');
  return parseSpiffeId(uri).trustDomain;
}

/** The one URI SAN of a certificate, or an error naming why there is not exactly one. */
export function certificateSpiffeId(certPem: string): string {
  const cert = new x509.X509Certificate(certPem);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const urls = san?.names.items.filter((n) => n.type === 'url').map((n) => n.value) ?? [];
  if (urls.length !== 1 || urls[0] === undefined) {
    throw new MeshError('IDENTITY_INVALID', `a workload certificate must have exactly one URI SAN, found ${urls.length}`);
  }
  return parseSpiffeId(urls[0]).id;
}

export async function exportKey(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

export async function importKey(pem: string): Promise<CryptoKey> {
  try {
    return await crypto.subtle.importKey('pkcs8', x509.PemConverter.decode(pem)[0] ?? new ArrayBuffer(0), ALG, false, ['sign']);
  } catch (err) {
    throw new MeshError('IDENTITY_INVALID', 'the CA key is not a PKCS#8 ECDSA P-256 private key', { cause: err });
  }
}

export function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString('hex');
}
