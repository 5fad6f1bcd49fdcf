// Signed registry records: a JWS (ES256, the workload key, its certificate chain in `x5c`) over the
// record JSON, and the reader's checks: chain to the bundle, valid now, URI SAN = `identity`, trust
// domain, name binding (with CA-signed grants). Only node:crypto and jose; no sidecar code.
import { createPrivateKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { CompactSign, decodeProtectedHeader, type CompactJWSHeaderParameters, type ProtectedHeaderParameters } from 'jose';
import { BoundedCache } from './bounded-cache.ts';
import { decodeRecord } from './codec.ts';
import { errorMessage } from './diagnostics.ts';
import { nameOwnership, type Ownership, type Registrations } from './name-binding.ts';
import { verifyGrant, type Grant } from './name-grant.ts';
import { rejection, type RecordSigner, type RecordVerifier, type SealedRecord } from './record-codec.ts';
import type { RegistryRecord } from './record.ts';
import { TrustBundle } from './trust-chain.ts';

export const RECORD_TYPE = 'agentmesh-record+jws';

/** What signing needs of a workload identity; the sidecar's Identity has these fields. */
export interface SigningIdentity {
  id: string;
  /** The leaf certificate, then any intermediates (PEM). */
  certPem: string;
  keyPem: string;
}

/** Signs with whatever identity `identity()` returns at each call (certificates are swapped when they renew). */
export function createRecordSigner(identity: () => SigningIdentity): RecordSigner {
  let cached: { certPem: string; keyPem: string; key: KeyObject; x5c: string[] } | undefined;
  return {
    async sign(record: RegistryRecord): Promise<string> {
      const current = identity();
      if (cached?.certPem !== current.certPem || cached.keyPem !== current.keyPem) {
        const x5c = (current.certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [])
          .map((pem) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''));
        cached = { certPem: current.certPem, keyPem: current.keyPem, key: createPrivateKey(current.keyPem), x5c };
      }
      const header: CompactJWSHeaderParameters = { alg: 'ES256', typ: RECORD_TYPE, x5c: cached.x5c };
      return new CompactSign(Buffer.from(JSON.stringify(record))).setProtectedHeader(header).sign(cached.key);
    },
  };
}

export interface RecordVerifierOptions {
  trustDomain: string;
  /** The trust bundle (PEM, one or more roots), read at each use. */
  bundle: () => string;
  /**
   * Names the mesh authority grants an identity besides the record's own grants (the policy's
   * `registrations`), read at each verification; after they change, the registry's rebind() applies them
   * to the records already held.
   */
  registrations?: (identity: string) => readonly Registrations[];
}

/** Distinct grant tokens kept verified (one per granted record in the mesh; above it a heartbeat would re-verify its grant). */
const MAX_CACHED_GRANTS = 16_384;

export function createRecordVerifier(options: RecordVerifierOptions): RecordVerifier {
  const trust = new TrustBundle(options.bundle);
  const grants = new BoundedCache<string, Grant | Error>(MAX_CACHED_GRANTS);
  let grantRoots: unknown;

  /** The record's grants that a CA in the bundle signed for its identity and that are in force; the rest is ignored. */
  const validGrants = async (record: RegistryRecord): Promise<{ valid: Grant[]; ignored: string[] }> => {
    const roots = trust.roots();
    if (roots !== grantRoots) { grants.clear(); grantRoots = roots; }
    const out = { valid: [] as Grant[], ignored: [] as string[] };
    for (const token of record.grants ?? []) {
      let grant = grants.get(token);
      if (grant === undefined) {
        try {
          grant = verifyGrant(token, roots.map((r) => r.publicKey));
        } catch (err) {
          grant = err instanceof Error ? err : new Error(String(err));
        }
        grants.set(token, grant);
      }
      if (grant instanceof Error) out.ignored.push(grant.message);
      else if (grant.identity !== record.identity) out.ignored.push(`a grant for ${grant.identity}`);
      else if (grant.expiresAt !== undefined && grant.expiresAt * 1000 <= Date.now()) out.ignored.push('the grant has expired');
      else out.valid.push(grant);
    }
    return out;
  };

  return {
    async verify(key: string, value: string): Promise<SealedRecord> {
      const parts = value.split('.');
      if (parts.length !== 3 || value.length > 4 * 1024 * 1024) throw rejection('invalid', `registry value at '${key}' is not a signed record (JWS compact serialization)`);
      let header: ProtectedHeaderParameters;
      try { header = decodeProtectedHeader(value); } catch (err) { throw rejection('invalid', `registry value at '${key}' has no readable JWS header`, err); }
      if (header.alg !== 'ES256' || header.typ !== RECORD_TYPE) throw rejection('bad_signature', `registry value at '${key}' is not an ES256 ${RECORD_TYPE}`);
      const chain = trust.check(header.x5c);
      // ES256 over `header.payload` (RFC 7515), checked synchronously with node:crypto: one ECDSA verify,
      // no WebCrypto round trip per heartbeat (jose signs; this is the same check its compactVerify makes).
      const [encodedHeader = '', encodedPayload = '', signature = ''] = parts;
      let verified = false;
      try {
        verified = verifySignature('sha256', Buffer.from(`${encodedHeader}.${encodedPayload}`), { key: chain.key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'));
      } catch (err) {
        throw rejection('bad_signature', `registry value at '${key}': the signature is malformed (${errorMessage(err)})`, err);
      }
      if (!verified) throw rejection('bad_signature', `registry value at '${key}': the signature does not verify with the key of ${chain.id}`);
      const record = decodeRecord(key, Buffer.from(encodedPayload, 'base64url').toString('utf8'));
      if (record.identity !== chain.id) throw rejection('identity_mismatch', `registry value at '${key}' claims identity ${record.identity} but is signed by ${chain.id}`);
      if (chain.trustDomain !== options.trustDomain) throw rejection('untrusted_chain', `registry value at '${key}' is signed by ${chain.id}, outside trust domain '${options.trustDomain}'`);
      const { valid, ignored } = await validGrants(record);
      const held = [...valid, ...(options.registrations?.(record.identity) ?? [])];
      const ownership = nameOwnership(record.kind, record.name, record.identity, options.trustDomain, held);
      if (ownership === 'none') {
        const why = ignored.length > 0 ? `; ignored grants: ${ignored.join('; ')}` : '';
        throw rejection('name_not_owned', `registry value at '${key}': ${record.identity} does not own the ${record.kind === 'agent' ? 'agent' : 'MCP server'} name '${record.name}'${why}`);
      }
      return { record, granted: ownership === 'granted', tag: parts[2] ?? '' };
    },
    async ownership(record: RegistryRecord): Promise<Ownership> {
      const { valid } = await validGrants(record);
      return nameOwnership(record.kind, record.name, record.identity, options.trustDomain, [...valid, ...(options.registrations?.(record.identity) ?? [])]);
    },
  };
}
