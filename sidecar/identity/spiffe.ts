// SPIFFE IDs: parsing and validation (spiffe://<trust-domain>/<path>), and reading the one URI SAN
// of a peer certificate as Node's TLS reports it. Pure.
import type { PeerCertificate } from 'node:tls';
import { MeshError } from '../../sdk/errors.ts';

export interface SpiffeId {
  id: string;
  trustDomain: string;
  path: string;
}

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Parses a SPIFFE ID; throws IDENTITY_INVALID naming what is wrong. */
export function parseSpiffeId(value: string): SpiffeId {
  const fail = (why: string): never => {
    throw new MeshError('IDENTITY_INVALID', `'${value}' is not a valid SPIFFE ID: ${why}`);
  };
  if (!value.startsWith('spiffe://')) fail('expected the scheme spiffe://');
  const rest = value.slice('spiffe://'.length);
  if (/[?#]/.test(rest)) fail('query and fragment are not allowed');
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (!TRUST_DOMAIN.test(trustDomain)) fail('the trust domain must be lowercase letters, digits, dots, dashes or underscores (no port, no user info)');
  if (path !== '') {
    const segments = path.slice(1).split('/');
    for (const s of segments) {
      if (s === '' || s === '.' || s === '..' || !SEGMENT.test(s)) fail(`bad path segment '${s}'`);
    }
  }
  return { id: value, trustDomain, path };
}

/** Parses a workload ID: a SPIFFE ID with a path, in `trustDomain`. */
export function parseWorkloadId(value: string, trustDomain: string): SpiffeId {
  const parsed = parseSpiffeId(value);
  if (parsed.path === '') throw new MeshError('IDENTITY_INVALID', `'${value}' names no workload (expected spiffe://${trustDomain}/…)`);
  if (parsed.trustDomain !== trustDomain) {
    throw new MeshError('IDENTITY_INVALID', `'${value}' is in trust domain '${parsed.trustDomain}', expected '${trustDomain}'`);
  }
  return parsed;
}

/** The URI SANs of a certificate as Node formats them (`URI:spiffe://…, DNS:…`). */
export function uriSans(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  return subjectAltName.split(/,\s*/).filter((n) => n.startsWith('URI:')).map((n) => n.slice(4));
}

/** The peer's SPIFFE ID when its certificate has exactly one URI SAN and it parses; otherwise undefined. */
export function peerSpiffeId(cert: PeerCertificate | undefined): string | undefined {
  const uris = uriSans(cert?.subjectaltname);
  if (uris.length !== 1 || uris[0] === undefined) return undefined;
  try {
    return parseSpiffeId(uris[0]).id;
  } catch {
    return undefined;
  }
}
