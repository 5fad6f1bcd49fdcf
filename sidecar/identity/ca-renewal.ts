// Identity from the online CA (`identity.ca`): join with a one-time token (or start from the SVID in
// identity.cert/key), then renew at half-life with the current SVID, retrying with backoff on failure.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { MeshError } from '../../sdk/errors.ts';
import type { Logger } from '../log.ts';
import { requestSvid } from './ca-client.ts';
import { watchFiles } from './file-reload.ts';
import { IdentityHolder } from './identity-holder.ts';
import { joinTokenSubject } from './join-token.ts';
import { parseWorkloadId } from './spiffe.ts';
import { loadIdentity, type Identity } from './tls.ts';

export interface CaIdentityOptions {
  ca: string;
  trustDomain: string;
  bundle: string;
  cert?: string | undefined;
  key?: string | undefined;
  token?: string | undefined;
  tokenFile?: string | undefined;
  log: Logger;
}

const MIN_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;

/** Joins (or resumes) and keeps renewing; the holder always has a valid-at-start identity. */
export async function identityFromCa(options: CaIdentityOptions): Promise<IdentityHolder> {
  const { log } = options;
  const stopped = new AbortController();
  let lastToken: string | undefined;
  const first = await resume(options) ?? await join(options, lastToken = await readToken(options, 'no usable SVID in identity.cert to renew'), stopped.signal);
  const holder = new IdentityHolder(first.identity, first.startMs);
  let timer: NodeJS.Timeout | undefined;
  let attempt = 0;
  const schedule = (ms: number): void => {
    if (stopped.signal.aborted) return;
    timer = setTimeout(() => { void renew(); }, Math.max(0, ms));
    timer.unref();
  };
  const renewAt = (): number => {
    const { notAfter } = holder.current();
    return holder.startMs() + (notAfter.getTime() - holder.startMs()) / 2;
  };
  const renew = async (): Promise<void> => {
    const current = holder.current();
    try {
      const expired = Date.now() >= current.notAfter.getTime();
      // An expired SVID cannot renew itself; a new token in identity.tokenFile can still bring it back.
      const token = expired && options.tokenFile ? await readToken(options, 'expired').catch(() => undefined) : undefined;
      const next = token !== undefined && token !== lastToken
        ? await join(options, token, stopped.signal)
        : await obtain(options, current.id, { client: { certPem: current.certPem, keyPem: current.keyPem } }, stopped.signal);
      if (token !== undefined) lastToken = token;
      holder.swap(next.identity, next.startMs);
      attempt = 0;
      log.info({ id: next.identity.id, notAfter: next.identity.notAfter.toISOString() }, 'renewed the SVID');
      schedule(renewAt() - Date.now());
    } catch (err) {
      if (stopped.signal.aborted) return;
      attempt++;
      holder.failing((err as Error).message);
      const left = current.notAfter.getTime() - Date.now();
      const wait = Math.min(MAX_RETRY_MS, MIN_RETRY_MS * 2 ** Math.min(attempt, 16), Math.max(MIN_RETRY_MS, left / 4));
      log.warn({ err, attempt, retryInMs: Math.round(wait), expiresInMs: left }, 'SVID renewal failed; retrying');
      schedule(wait * (0.75 + Math.random() * 0.5));
    }
  };
  schedule(renewAt() - Date.now());
  // The bundle stays a file (the trust anchor): a changed one (new roots) is picked up without a restart.
  const stopWatch = watchFiles([options.bundle], async () => {
    const bundlePem = await readFile(options.bundle, 'utf8').catch(() => undefined);
    if (!bundlePem || bundlePem === holder.current().bundlePem) return;
    holder.swap({ ...holder.current(), bundlePem }, holder.startMs());
    log.info({ bundle: options.bundle }, 'reloaded the trust bundle');
  });
  holder.onClose(() => {
    stopped.abort();
    clearTimeout(timer);
    stopWatch();
  });
  return holder;
}

interface Obtained {
  identity: Identity;
  startMs: number;
}

/** The SVID left in identity.cert/key by an earlier run, if it is still valid. */
async function resume(options: CaIdentityOptions): Promise<Obtained | undefined> {
  if (!options.cert || !options.key) return undefined;
  try {
    const identity = await loadIdentity({ cert: options.cert, key: options.key, bundle: options.bundle, trustDomain: options.trustDomain });
    // The CA backdates SVIDs by its clock skew allowance; the lifetime counts from signing.
    const { X509Certificate } = await import('node:crypto');
    return { identity, startMs: Math.min(Date.now(), Date.parse(new X509Certificate(identity.certPem).validFrom) + 30_000) };
  } catch (err) {
    options.log.info({ reason: (err as Error).message }, 'no SVID to resume from identity.cert; joining with the token');
    return undefined;
  }
}

async function join(options: CaIdentityOptions, token: string, signal: AbortSignal): Promise<Obtained> {
  const id = parseWorkloadId(joinTokenSubject(token), options.trustDomain).id;
  const obtained = await obtain(options, id, { token }, signal);
  options.log.info({ id, notAfter: obtained.identity.notAfter.toISOString() }, 'joined the mesh with a join token');
  return obtained;
}

async function obtain(options: CaIdentityOptions, id: string, auth: { token: string } | { client: { certPem: string; keyPem: string } }, signal: AbortSignal): Promise<Obtained> {
  const bundlePem = await readFile(options.bundle, 'utf8').catch((err: unknown) => {
    throw new MeshError('IDENTITY_INVALID', `identity.bundle: cannot read ${options.bundle}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  });
  const { createCsr } = await import('./csr.ts');
  const { csrPem, keyPem } = await createCsr(id);
  const startMs = Date.now();
  const certPem = await requestSvid({ ca: options.ca, trustDomain: options.trustDomain, bundlePem, id, csrPem, keyPem, signal, ...auth });
  const identity = await toIdentity(id, options.trustDomain, certPem, keyPem, bundlePem);
  if (options.cert && options.key) {
    // Keeping the SVID only spares a restart a new token: failing to write it does not fail the renewal.
    await persist(options.cert, options.key, certPem, keyPem)
      .catch((err: unknown) => options.log.warn({ err }, 'could not write the SVID to identity.cert/identity.key; a restart will need a new token'));
  }
  return { identity, startMs };
}

async function toIdentity(id: string, trustDomain: string, certPem: string, keyPem: string, bundlePem: string): Promise<Identity> {
  const { X509Certificate } = await import('node:crypto');
  return { id, trustDomain, certPem, keyPem, bundlePem, notAfter: new Date(new X509Certificate(certPem).validTo) };
}

/** Writes the SVID so a restart renews with it instead of needing a new token (key 0600, each file replaced atomically). */
async function persist(certPath: string, keyPath: string, certPem: string, keyPem: string): Promise<void> {
  await mkdir(dirname(keyPath), { recursive: true, mode: 0o700 });
  await mkdir(dirname(certPath), { recursive: true, mode: 0o700 });
  await writeFile(`${keyPath}.tmp`, keyPem, { mode: 0o600 });
  await writeFile(`${certPath}.tmp`, certPem.endsWith('\n') ? certPem : `${certPem}\n`, { mode: 0o644 });
  await rename(`${keyPath}.tmp`, keyPath);
  await rename(`${certPath}.tmp`, certPath);
}

async function readToken(options: CaIdentityOptions, why: string): Promise<string> {
  if (options.token) return options.token;
  if (options.tokenFile) {
    const text = await readFile(options.tokenFile, 'utf8').catch((err: unknown) => {
      throw new MeshError('CONFIG_INVALID', `identity.tokenFile: cannot read ${options.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    });
    if (text.trim()) return text.trim();
  }
  throw new MeshError('CONFIG_INVALID', `identity.token: ${why}, and no join token (identity.token or identity.tokenFile) to join with`);
}
