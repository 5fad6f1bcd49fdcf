// Certificate chains from a record's `x5c` header, checked against the trust bundle with node:crypto:
// each certificate issued and signed by the next, the last by a root in the bundle (which may hold
// several). Results are cached by the chain's fingerprint, so a heartbeat costs no X.509 work.
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { BoundedCache } from './bounded-cache.ts';
import { rejection } from './record-codec.ts';

/** A chain that verified: the leaf's SPIFFE ID and key, and when the whole chain is valid. */
export interface TrustedChain {
  id: string;
  trustDomain: string;
  key: KeyObject;
  notBefore: number;
  notAfter: number;
}

const MAX_CHAIN = 5;
/** Distinct chains kept verified: above the number of workloads heartbeating in the mesh, a heartbeat would re-verify its chain. */
const MAX_CACHED = 16_384;
const SPIFFE_ID = /^spiffe:\/\/([a-z0-9._-]+)(\/[A-Za-z0-9._\-/]{1,2040})$/;

export class TrustBundle {
  readonly #bundle: () => string;
  #text: string | undefined;
  #roots: X509Certificate[] = [];
  readonly #chains = new BoundedCache<string, TrustedChain | Error>(MAX_CACHED);

  /** `bundle` is read on each use: a rotated bundle (several roots) takes effect at once. */
  constructor(bundle: () => string) {
    this.#bundle = bundle;
  }

  /** The CA certificates of the current bundle. */
  roots(): readonly X509Certificate[] {
    const text = this.#bundle();
    if (text !== this.#text) {
      this.#text = text;
      this.#roots = (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).flatMap((pem) => {
        try { return [new X509Certificate(pem)]; } catch { return []; }
      });
      this.#chains.clear();
    }
    return this.#roots;
  }

  /** Verifies `x5c` (base64 DER, leaf first) and that it is valid at `now`; throws a rejection naming why. */
  check(x5c: unknown, now = Date.now()): TrustedChain {
    const roots = this.roots();
    if (!Array.isArray(x5c) || x5c.length === 0 || x5c.length > MAX_CHAIN || !x5c.every((c) => typeof c === 'string' && c.length < 16_384)) {
      throw rejection('untrusted_chain', `the x5c header must hold 1-${MAX_CHAIN} base64 certificates`);
    }
    const fingerprint = createHash('sha256').update((x5c as string[]).join('.')).digest('base64url');
    let chain = this.#chains.get(fingerprint);
    if (chain === undefined) {
      try { chain = verifyChain(x5c as string[], roots); } catch (err) { chain = err instanceof Error ? err : new Error(String(err)); }
      this.#chains.set(fingerprint, chain);
    }
    if (chain instanceof Error) throw chain;
    if (now < chain.notBefore || now >= chain.notAfter) {
      throw rejection('expired', `the certificate of ${chain.id} is not valid now (valid ${new Date(chain.notBefore).toISOString()} to ${new Date(chain.notAfter).toISOString()})`);
    }
    return chain;
  }
}

function verifyChain(x5c: readonly string[], roots: readonly X509Certificate[]): TrustedChain {
  let certs: X509Certificate[];
  try {
    certs = x5c.map((der) => new X509Certificate(Buffer.from(der, 'base64')));
  } catch (err) {
    throw rejection('untrusted_chain', 'the x5c header holds something that is not a certificate', err);
  }
  const [leaf] = certs;
  if (!leaf) throw rejection('untrusted_chain', 'the x5c header is empty');
  for (let i = 0; i + 1 < certs.length; i++) {
    const [child, parent] = [certs[i], certs[i + 1]];
    if (!child || !parent || !parent.ca || !child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      throw rejection('untrusted_chain', `certificate ${i} of the x5c chain is not signed by the next one`);
    }
  }
  const last = certs[certs.length - 1] ?? leaf;
  const anchored = roots.some((root) => root.fingerprint256 === last.fingerprint256 || (last.checkIssued(root) && last.verify(root.publicKey)));
  if (!anchored) throw rejection('untrusted_chain', 'the certificate chain does not lead to a CA in the trust bundle');
  if (leaf.ca) throw rejection('untrusted_chain', 'the signing certificate is a CA certificate, not a workload certificate');
  const uris = (leaf.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('URI:'));
  const match = uris.length === 1 ? SPIFFE_ID.exec(uris[0]?.slice(4) ?? '') : null;
  if (!match?.[1]) throw rejection('untrusted_chain', 'the signing certificate must carry exactly one spiffe:// URI SAN with a path');
  const times = certs.map((c) => [Date.parse(c.validFrom), Date.parse(c.validTo)] as const);
  return {
    id: match[0], trustDomain: match[1], key: leaf.publicKey,
    notBefore: Math.max(...times.map((t) => t[0])), notAfter: Math.min(...times.map((t) => t[1])),
  };
}
