// The shapes the delegation chain carries (end user, agent chain, call budget) and their JWT claim form:
// RFC 8693 `act` nesting, newest actor outermost. Pure: no keys, no I/O; every value read is bounded.
import { MeshError } from '../../sdk/errors.ts';

/** The verified end user: the token's subject and the claims auth.jwt.claims selected. */
export interface MeshUser {
  subject: string;
  claims: Readonly<Record<string, ClaimValue>>;
}

export type ClaimValue = string | number | boolean | readonly (string | number | boolean)[];

/** What a call carries besides user and chain (RequestContext.delegation). */
export interface Delegated {
  /** Calls the originating request may still make after this one; undefined without a budget. */
  budget: number | undefined;
  /** The id of the token the local agent handed back (its budget is shared by every call made with it). */
  parent: string | undefined;
  /** When the token the agent handed back expires (epoch s). */
  parentExp: number | undefined;
}

/** Longest chain accepted (agents the call passed through). */
export const MAX_CHAIN = 64;
const MAX_STRING = 256;
const MAX_LIST = 32;

/** `act` for a chain, oldest first: { sub: newest, act: { sub: older, … } }. */
export function actClaim(chain: readonly string[]): Record<string, unknown> | undefined {
  let act: Record<string, unknown> | undefined;
  for (const sub of chain) act = act ? { sub, act } : { sub };
  return act;
}

/** The chain (oldest first) from an `act` claim; UNAUTHENTICATED when it is not a plain nesting of SPIFFE IDs. */
export function chainOf(act: unknown, trustDomain: string): string[] {
  const newestFirst: string[] = [];
  let node = act;
  while (node !== undefined) {
    if (typeof node !== 'object' || node === null || newestFirst.length >= MAX_CHAIN) throw invalid('the act claim is not a nesting of at most 64 actors');
    const { sub, act: inner } = node as { sub?: unknown; act?: unknown };
    if (typeof sub !== 'string' || !sub.startsWith(`spiffe://${trustDomain}/`) || sub.length > 2048) throw invalid(`an actor in the chain is not a SPIFFE ID of trust domain ${trustDomain}`);
    newestFirst.push(sub);
    node = inner;
  }
  return newestFirst.reverse();
}

/** A claim value kept only when it is a short string, a number, a boolean or a short list of them. */
export function claimValue(value: unknown): ClaimValue | undefined {
  if (typeof value === 'string') return value.length <= MAX_STRING ? value : undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'boolean') return value;
  if (Array.isArray(value) && value.length <= MAX_LIST) {
    const items = value.filter((v): v is string | number | boolean => (typeof v === 'string' && v.length <= MAX_STRING) || (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean');
    return items.length === value.length ? items : undefined;
  }
  return undefined;
}

/** The `claims` claim of a chain token, re-checked value by value. */
export function userClaims(value: unknown, names?: readonly string[]): Record<string, ClaimValue> {
  const out: Record<string, ClaimValue> = {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return out;
  const source = value as Record<string, unknown>;
  for (const name of names ?? Object.keys(source).slice(0, MAX_LIST)) {
    if (!Object.hasOwn(source, name)) continue;
    const v = claimValue(source[name]);
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/** x-agentmesh-user: JSON with everything outside printable ASCII escaped, so it is a valid header value. */
export function userHeaderValue(user: MeshUser): string {
  return JSON.stringify({ subject: user.subject, claims: user.claims }).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function invalid(why: string): MeshError {
  return new MeshError('UNAUTHENTICATED', `delegation chain refused: ${why}`);
}
