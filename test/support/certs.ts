// A throwaway PKI for tests: a mesh CA on disk and workload certificates issued on demand, plus the
// bad ones the mTLS tests need (another CA, another trust domain, expired).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issueWorkload, type PemPair } from '../../sidecar/identity/index.ts';

export interface IdentityFiles {
  trustDomain: string;
  cert: string;
  key: string;
  bundle: string;
}

export interface TestPki {
  readonly trustDomain: string;
  readonly ca: PemPair;
  /** A valid workload certificate for `id`, written to disk, in config shape. */
  issue(id: string, options?: { notBefore?: Date; notAfter?: Date }): Promise<IdentityFiles>;
  /** Writes any PEM pair with this PKI's bundle. */
  write(name: string, pair: PemPair): IdentityFiles;
  close(): Promise<void>;
}

export async function createTestPki(options: { trustDomain: string }): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-pki-'));
  const ca = await createCa({ trustDomain: options.trustDomain });
  const bundle = join(dir, 'bundle.pem');
  writeFileSync(bundle, ca.certPem);
  let n = 0;
  const write = (name: string, pair: PemPair): IdentityFiles => {
    const out = join(dir, `${name.replace(/[^a-zA-Z0-9_-]/g, '_')}-${n++}`);
    mkdirSync(out);
    writeFileSync(join(out, 'cert.pem'), pair.certPem);
    writeFileSync(join(out, 'key.pem'), pair.keyPem, { mode: 0o600 });
    return { trustDomain: options.trustDomain, cert: join(out, 'cert.pem'), key: join(out, 'key.pem'), bundle };
  };
  return {
    trustDomain: options.trustDomain,
    ca,
    async issue(id, validity = {}) {
      return write(id, await issueWorkload({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, id, ...validity }));
    },
    write,
    async close() { rmSync(dir, { recursive: true, force: true }); },
  };
}
