// Retiring the pools of an old certificate generation: closed gracefully at once (idle connections go,
// calls in flight finish), and whatever is still open is cut before the old certificate expires.
import type { Pool } from './undici.ts';

/** Connections made with a certificate are cut at least this long before it expires. */
export const RETIRE_MARGIN_MS = 2000;

export function retireAtExpiry(pools: readonly Pool[], expiresAtMs: number, retiring: Set<Pool>): void {
  if (pools.length === 0) return;
  for (const pool of pools) retiring.add(pool);
  let timer: NodeJS.Timeout | undefined;
  const cut = (): void => {
    for (const pool of pools) {
      if (retiring.delete(pool)) void pool.destroy().catch(() => undefined);
    }
  };
  void Promise.allSettled(pools.map((pool) => pool.close().then(() => { retiring.delete(pool); }))).then(() => clearTimeout(timer));
  timer = setTimeout(cut, Math.max(0, expiresAtMs - Date.now() - RETIRE_MARGIN_MS));
  timer.unref();
}
