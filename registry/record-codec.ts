// How registry values are written and read: the signer/verifier seams a sidecar injects (signed JWS
// records, see signed-records.ts) and the plain JSON codec used without them. No crypto here.
import { MeshError } from '../sdk/errors.ts';
import { decodeRecord, encodeRecord, validateRecord } from './codec.ts';
import type { Ownership } from './name-binding.ts';
import type { RegistryRecord } from './record.ts';

/** Why a stored value was not used; the label of `agentmesh_registry_rejected_total`. */
export type RejectReason =
  | 'invalid' | 'bad_signature' | 'untrusted_chain' | 'expired' | 'identity_mismatch'
  | 'name_not_owned' | 'replay' | 'mcp_name_conflict';

/** A record a reader accepted, with what the verifier learnt about its owner. */
export interface SealedRecord {
  record: RegistryRecord;
  /** The owner holds a grant from the mesh authority for this record's name. */
  granted: boolean;
  /** Tells two values with one heartbeatAt apart (the JWS signature; the text when unsigned). */
  tag: string;
}

/** Signs a record about to be written (with the workload key, read at each call: certificates rotate). */
export interface RecordSigner {
  sign(record: RegistryRecord): Promise<string>;
}

/** Verifies a stored value; throws rejection(...) naming the reason. Never trusts the bytes. */
export interface RecordVerifier {
  verify(key: string, value: string): Promise<SealedRecord>;
  /**
   * The name binding of a record already verified, checked again with the grants in force now (the
   * policy's `registrations` change): 'none' when its owner no longer owns its name.
   */
  ownership?(record: RegistryRecord): Promise<Ownership>;
}

export interface RecordCodec {
  encode(record: RegistryRecord): Promise<string>;
  decode(key: string, value: string): Promise<SealedRecord>;
}

/** A REGISTRY_RECORD_INVALID error carrying the reason the value was refused. */
export function rejection(reason: RejectReason, message: string, cause?: unknown): MeshError {
  return new MeshError('REGISTRY_RECORD_INVALID', message, { details: { reason }, ...(cause === undefined ? {} : { cause }) });
}

/** The reason a decode failed ('invalid' for anything that is not a rejection). */
export function rejectReason(err: unknown): RejectReason {
  const reason = err instanceof MeshError ? err.details?.reason : undefined;
  return typeof reason === 'string' ? reason as RejectReason : 'invalid';
}

/** Signs with `signer` and verifies with `verifier` when given; plain validated JSON otherwise. */
export function recordCodec(signer?: RecordSigner, verifier?: RecordVerifier): RecordCodec {
  return {
    encode: signer ? (record) => signer.sign(validateRecord(record)) : async (record) => encodeRecord(record),
    decode: verifier ? (key, value) => verifier.verify(key, value) : async (key, value) => ({ record: decodeRecord(key, value), granted: false, tag: value }),
  };
}

