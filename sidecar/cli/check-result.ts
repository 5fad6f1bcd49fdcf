// One line of `agentmesh check`: what was checked (a config key), ✔ / ⚠ / ✖, what was found, and a
// hint for fixing it. Pure.

export interface CheckResult {
  /** The config key (or area) the line is about: identity.cert, registry.nats, listen.inbound … */
  key: string;
  status: 'ok' | 'warn' | 'fail';
  message: string;
  hint?: string;
}

export const ok = (key: string, message: string): CheckResult => ({ key, status: 'ok', message });
export const warn = (key: string, message: string, hint?: string): CheckResult => ({ key, status: 'warn', message, ...(hint ? { hint } : {}) });
export const fail = (key: string, message: string, hint?: string): CheckResult => ({ key, status: 'fail', message, ...(hint ? { hint } : {}) });

const MARKS = { ok: '✔', warn: '⚠', fail: '✖' } as const;

export function formatResult(r: CheckResult): string {
  return `${MARKS[r.status]} ${r.key}: ${r.message}${r.hint ? `\n    hint: ${r.hint}` : ''}`;
}
