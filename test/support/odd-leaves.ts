// Test-only: leaf certificates signed by a real test CA in the shapes SPIFFE forbids (no path, CA=true,
// keyCertSign, no keyUsage, no EKU, one EKU, an ID over 2048 bytes), built with @peculiar/x509.
import { webcrypto } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { PemPair } from '../../sidecar/identity/index.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export type OddShape = 'no-path' | 'ca-true' | 'key-cert-sign' | 'crl-sign' | 'no-key-usage' | 'no-digital-signature'
  | 'no-eku' | 'client-auth-only' | 'server-auth-only' | 'long-id' | 'two-uris';

export const ODD_SHAPES: readonly OddShape[] = [
  'no-path', 'ca-true', 'key-cert-sign', 'crl-sign', 'no-key-usage', 'no-digital-signature', 'no-eku', 'client-auth-only',
  'server-auth-only', 'long-id', 'two-uris',
];

/** A leaf for `id` in `shape`, signed by the CA (what the mesh must refuse). */
export async function oddLeaf(ca: PemPair, id: string, shape: OddShape): Promise<PemPair> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decode(ca.keyPem)[0] ?? new ArrayBuffer(0), ALG, false, ['sign']);
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const trustDomain = new URL(id.replace('spiffe://', 'http://')).host;
  const F = x509.KeyUsageFlags;
  const E = x509.ExtendedKeyUsage;
  let uris = [id];
  let isCa = false;
  let usage: number | undefined = F.digitalSignature | F.keyAgreement;
  let eku: string[] | undefined = [E.serverAuth, E.clientAuth];
  switch (shape) {
    case 'no-path': uris = [`spiffe://${trustDomain}`]; break;
    case 'ca-true': isCa = true; break;
    case 'key-cert-sign': usage = F.digitalSignature | F.keyCertSign; break;
    case 'crl-sign': usage = F.digitalSignature | F.cRLSign; break;
    case 'no-key-usage': usage = undefined; break;
    case 'no-digital-signature': usage = F.keyAgreement; break;
    case 'no-eku': eku = undefined; break;
    case 'client-auth-only': eku = [E.clientAuth]; break;
    case 'server-auth-only': eku = [E.serverAuth]; break;
    case 'long-id': uris = [`${id}/${'x'.repeat(2100)}`]; break;
    case 'two-uris': uris = [id, `${id}-second`]; break;
    default: shape satisfies never;
  }
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(isCa, undefined, true),
    new x509.SubjectAlternativeNameExtension(uris.map((value) => ({ type: 'url' as const, value })), true),
    await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
  ];
  if (usage !== undefined) extensions.push(new x509.KeyUsagesExtension(usage, true));
  if (eku !== undefined) extensions.push(new x509.ExtendedKeyUsageExtension(eku));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex').replace(/^[89a-f]/, '1'),
    subject: 'O=agentmesh-test', issuer: caCert.subject,
    notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000),
    publicKey: keys.publicKey, signingKey: caKey, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' }, extensions,
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: cert.toString('pem'), keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') };
}
