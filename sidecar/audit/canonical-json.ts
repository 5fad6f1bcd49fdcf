// Canonical JSON (object keys sorted at every level, no whitespace) and its SHA-256: the one encoding
// audit hashes and tool pins are computed over, so a reader re-derives the same bytes from parsed JSON.
import { hash } from 'node:crypto';

/** JSON with object keys sorted recursively; `undefined` members are left out as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

/** One-shot (no Hash object per call): the same digest as createHash('sha256').update(text).digest('hex'). */
export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = sortKeys(v);
  }
  return out;
}
