// `agentmesh ca init` and `ca issue` on disk: the CA in DIR/ca.pem + DIR/ca-key.pem, workload
// certificates in OUT/cert.pem, OUT/key.pem and OUT/bundle.pem. Private keys are written 0600.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshError } from '../../sdk/errors.ts';
import { createCa, issueWorkload } from './ca.ts';

export async function caInit(options: { trustDomain: string; dir: string }): Promise<{ cert: string; key: string }> {
  const cert = join(options.dir, 'ca.pem');
  const key = join(options.dir, 'ca-key.pem');
  const ca = await createCa({ trustDomain: options.trustDomain });
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  try {
    // 'wx' refuses to overwrite: replacing a CA would orphan every certificate it issued.
    await writeFile(key, ca.keyPem, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new MeshError('CONFIG_INVALID', `a mesh CA already exists in ${options.dir} (${key}); refusing to overwrite it`);
    }
    throw err;
  }
  await writeFile(cert, withNewline(ca.certPem), { mode: 0o644 });
  return { cert, key };
}

export async function caIssue(options: { dir: string; id: string; out: string; ttlMs?: number }): Promise<{ cert: string; key: string; bundle: string }> {
  const [caCertPem, caKeyPem] = await Promise.all([
    readCaFile(join(options.dir, 'ca.pem')),
    readCaFile(join(options.dir, 'ca-key.pem')),
  ]);
  const issued = await issueWorkload({ caCertPem, caKeyPem, id: options.id, ...(options.ttlMs ? { ttlMs: options.ttlMs } : {}) });
  await mkdir(options.out, { recursive: true, mode: 0o700 });
  const paths = { cert: join(options.out, 'cert.pem'), key: join(options.out, 'key.pem'), bundle: join(options.out, 'bundle.pem') };
  await writeFile(paths.key, issued.keyPem, { mode: 0o600 });
  await writeFile(paths.cert, withNewline(issued.certPem), { mode: 0o644 });
  await writeFile(paths.bundle, withNewline(caCertPem), { mode: 0o644 });
  return paths;
}

async function readCaFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new MeshError('CONFIG_INVALID', `cannot read ${path} (run 'agentmesh ca init' first?): ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

/** PEM files end with a newline, so `cat old.pem new.pem > bundle.pem` makes a valid bundle of two roots. */
export function withNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}
