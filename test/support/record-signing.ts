// Signed registry records for tests and benchmarks that write records for many identities from one
// process: a signer that issues (once) a workload certificate for each record's identity from a CA
// it holds, and the matching verifier. A real sidecar signs with its one identity instead.
import { createRecordSigner, createRecordVerifier, type RecordSigner, type RecordVerifier, type SigningIdentity } from '../../registry/index.ts';
import { issueWorkload, signWorkload, type PemPair } from '../../sidecar/identity/index.ts';

export interface MeshSigning {
  signer: RecordSigner;
  verifier: RecordVerifier;
  /** The workload certificate the signer uses for `id` (issued on first use). */
  identity(id: string): Promise<SigningIdentity>;
}

export function meshSigning(ca: PemPair, trustDomain: string): MeshSigning {
  const issued = new Map<string, Promise<SigningIdentity>>();
  const signers = new Map<string, RecordSigner>();
  const identity = (id: string): Promise<SigningIdentity> => {
    let found = issued.get(id);
    if (!found) {
      // signWorkload: tests also sign as identities outside the trust domain, which readers must refuse.
      const sign = id.startsWith(`spiffe://${trustDomain}/`) ? issueWorkload : signWorkload;
      found = sign({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, id }).then((pair) => ({ id, certPem: pair.certPem, keyPem: pair.keyPem }));
      issued.set(id, found);
    }
    return found;
  };
  return {
    identity,
    signer: {
      async sign(record) {
        const id = await identity(record.identity);
        let signer = signers.get(id.id);
        if (!signer) signers.set(id.id, (signer = createRecordSigner(() => id)));
        return signer.sign(record);
      },
    },
    verifier: createRecordVerifier({ trustDomain, bundle: () => ca.certPem }),
  };
}
