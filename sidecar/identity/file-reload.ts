// Reload of file-based certificates (cert-manager, SPIRE helper, `ca issue`): a cheap stat poll of
// identity.cert, .key and .bundle; when any changes, the set is loaded and checked, then swapped in.
import { stat } from 'node:fs/promises';
import type { Logger } from '../log.ts';
import type { IdentityHolder } from './identity-holder.ts';
import { loadIdentity, type Identity } from './tls.ts';

/** How often the files are looked at: new connections use replaced files within this (plus a load). */
export const FILE_POLL_MS = 2000;

/** Calls `onChange` when any of `paths` changes (mtime, size or inode), polling every `intervalMs`. */
export function watchFiles(paths: readonly string[], onChange: () => Promise<void>, intervalMs = FILE_POLL_MS): () => void {
  let last: string | undefined;
  let busy = false;
  const signature = async () => (await Promise.all(paths.map((p) => stat(p).then((s) => `${s.mtimeMs}:${s.size}:${s.ino}`, () => 'missing')))).join('|');
  void signature().then((s) => { last ??= s; });
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void (async () => {
      const now = await signature();
      if (last !== undefined && now !== last) await onChange();
      last = now;
    })().finally(() => { busy = false; });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Keeps `holder` in step with the certificate files; a set that does not load (half-written, wrong key) is retried on the next change. */
export function reloadOnChange(holder: IdentityHolder, files: { cert: string; key: string; bundle: string; trustDomain: string }, log: Logger, intervalMs?: number): void {
  const stop = watchFiles([files.cert, files.key, files.bundle], async () => {
    let next: Identity;
    try {
      next = await loadIdentity(files);
    } catch (err) {
      holder.failing(`reloading ${files.cert}: ${(err as Error).message}`);
      log.warn({ err }, 'certificate files changed but do not load; keeping the current certificate');
      return;
    }
    const current = holder.current();
    if (next.certPem === current.certPem && next.keyPem === current.keyPem && next.bundlePem === current.bundlePem) return;
    try {
      holder.swap(next);
      log.info({ id: next.id, notAfter: next.notAfter.toISOString() }, 'reloaded the certificate files');
    } catch (err) {
      holder.failing((err as Error).message);
      log.error({ err }, 'certificate files changed to another identity; keeping the current certificate');
    }
  }, intervalMs);
  holder.onClose(stop);
}
