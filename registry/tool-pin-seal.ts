// Signed tool pins: an approval is a JWS signed with the mesh CA key (the authority that signs name
// grants, `agentmesh tools approve --ca-dir`); a first-use pin is a JWS signed with the workload key of
// the sidecar that took it (its certificate chain in `x5c`). Readers check both against the trust bundle.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { CompactSign, compactVerify, decodeProtectedHeader, type ProtectedHeaderParameters } from 'jose';
import { MeshError } from '../sdk/errors.ts';
import { errorMessage } from './diagnostics.ts';
import type { SigningIdentity } from './signed-records.ts';
import { TrustBundle } from './trust-chain.ts';
import { ToolPinSchema, type ToolPin } from './tool-pin-schema.ts';

export const APPROVAL_TYPE = 'agentmesh-tool-approval+jws';
export const FIRST_USE_TYPE = 'agentmesh-tool-pin+jws';

/** Why a stored pin was ignored; the label of `agentmesh_tool_pins_rejected_total`. */
export type PinRejectReason = 'unsigned' | 'bad_signature' | 'not_authority' | 'wrong_tool' | 'replaced' | 'invalid';

/** A TOOL_PIN_INVALID error carrying the reason the stored pin was ignored. */
export function pinRejection(reason: PinRejectReason, message: string, cause?: unknown): MeshError {
  return new MeshError('TOOL_PIN_INVALID', message, { details: { reason }, ...(cause === undefined ? {} : { cause }) });
}

export function pinRejectReason(err: unknown): PinRejectReason {
  const reason = err instanceof MeshError ? err.details?.reason : undefined;
  return typeof reason === 'string' ? reason as PinRejectReason : 'invalid';
}

/** A pin that verified, and who signed it (the CA for approvals, a workload's SPIFFE ID for first-use pins). */
export interface VerifiedPin {
  pin: ToolPin;
  signer: string;
}

export interface PinVerifier {
  /** Verifies the value stored under (server, tool); throws pinRejection(...) naming why it does not count. */
  verify(server: string, tool: string, value: string): Promise<VerifiedPin>;
}

/** Signs an approval with the CA's private key (PKCS#8 PEM, ECDSA P-256). */
export async function signApproval(caKeyPem: string, pin: Omit<ToolPin, 'how'>): Promise<string> {
  let key: KeyObject;
  try {
    key = createPrivateKey(caKeyPem);
  } catch (err) {
    throw new MeshError('IDENTITY_INVALID', 'the CA key is not a PEM private key', { cause: err });
  }
  const body = ToolPinSchema.parse({ ...pin, how: 'approved' });
  return new CompactSign(Buffer.from(JSON.stringify(body))).setProtectedHeader({ alg: 'ES256', typ: APPROVAL_TYPE }).sign(key);
}

/** Signs a first-use pin with the workload key of the sidecar taking it. */
export async function signFirstUse(identity: SigningIdentity, pin: Omit<ToolPin, 'how'>): Promise<string> {
  const x5c = (identity.certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [])
    .map((pem) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''));
  const body = ToolPinSchema.parse({ ...pin, how: 'first-use' });
  return new CompactSign(Buffer.from(JSON.stringify(body))).setProtectedHeader({ alg: 'ES256', typ: FIRST_USE_TYPE, x5c }).sign(createPrivateKey(identity.keyPem));
}

export function createPinVerifier(options: { trustDomain: string; bundle: () => string }): PinVerifier {
  const trust = new TrustBundle(options.bundle);
  const at = (server: string, tool: string) => `the pin of '${server}__${tool}'`;
  return {
    async verify(server, tool, value) {
      if (value.split('.').length !== 3) throw pinRejection('unsigned', `${at(server, tool)} is not signed (no JWS): ignored`);
      let header: ProtectedHeaderParameters;
      try { header = decodeProtectedHeader(value); } catch (err) { throw pinRejection('unsigned', `${at(server, tool)} has no readable JWS header`, err); }
      if (header.alg !== 'ES256') throw pinRejection('bad_signature', `${at(server, tool)} is not ES256`);
      let payload: Uint8Array;
      let signer: string;
      let how: ToolPin['how'];
      if (header.typ === APPROVAL_TYPE) {
        const verified = await verifyWithRoots(value, trust.roots().map((r) => r.publicKey));
        if (!verified) throw pinRejection('not_authority', `${at(server, tool)} claims to be an approval but is not signed by a CA in the trust bundle`);
        [payload, signer, how] = [verified, 'mesh CA', 'approved'];
      } else if (header.typ === FIRST_USE_TYPE) {
        let chain;
        try { chain = trust.check(header.x5c); } catch (err) { throw pinRejection('bad_signature', `${at(server, tool)}: ${errorMessage(err)}`, err); }
        if (chain.trustDomain !== options.trustDomain) throw pinRejection('bad_signature', `${at(server, tool)} is signed by ${chain.id}, outside trust domain '${options.trustDomain}'`);
        try {
          payload = (await compactVerify(value, chain.key, { algorithms: ['ES256'] })).payload;
        } catch (err) {
          throw pinRejection('bad_signature', `${at(server, tool)}: the signature does not verify with the key of ${chain.id}`, err);
        }
        [signer, how] = [chain.id, 'first-use'];
      } else {
        throw pinRejection('unsigned', `${at(server, tool)} is not a signed tool pin (typ '${String(header.typ)}')`);
      }
      let parsed: ReturnType<typeof ToolPinSchema.safeParse>;
      try { parsed = ToolPinSchema.safeParse(JSON.parse(Buffer.from(payload).toString('utf8'))); } catch (err) { throw pinRejection('invalid', `${at(server, tool)} is not JSON`, err); }
      if (!parsed.success) throw pinRejection('invalid', `${at(server, tool)} is malformed`);
      const pin = parsed.data;
      if (pin.how !== how) throw pinRejection('not_authority', `${at(server, tool)} says '${pin.how}' but is signed as a ${how} pin by ${signer}`);
      if (pin.server !== server || pin.tool !== tool) throw pinRejection('wrong_tool', `${at(server, tool)} is signed for '${pin.server}__${pin.tool}'`);
      return { pin, signer };
    },
  };
}

async function verifyWithRoots(value: string, roots: readonly KeyObject[]): Promise<Uint8Array | undefined> {
  for (const root of roots) {
    try {
      return (await compactVerify(value, root, { algorithms: ['ES256'] })).payload;
    } catch { /* the next root */ }
  }
  return undefined;
}
