// The audit record: what one call, policy decision, tool event or gap leaves behind, and the hash chain
// (sequence + SHA-256 over the previous hash and the record). Built from the request context only:
// never a body, token, cookie, session id or push token.
import type { RequestContext } from '../request-context.ts';
import { canonicalJson, sha256Hex } from './canonical-json.ts';
import { sealCall, type ChainPosition } from './call-line.ts';

/** The `prev` of an instance's first record. */
export const GENESIS = '0'.repeat(64);

export type Decision = 'allow' | 'deny' | 'would-deny';

/** One call as this sidecar saw it (and the policy decision it made, if a policy is in force). */
export interface CallFields {
  kind: 'call';
  requestId: string;
  direction: 'outbound' | 'inbound';
  caller?: string;
  user?: string;
  chain?: string[];
  target?: string;
  method: string;
  taskId?: string;
  contextId?: string;
  tool?: string;
  decision?: Decision;
  rule?: string;
  traceId?: string;
  status: number;
  durationMs: number;
}

/** A tool definition first pinned, approved, changed, shadowed, or flagged. */
export interface ToolFields {
  kind: 'tool';
  event: 'pinned' | 'approved' | 'changed' | 'shadowed' | 'flagged' | 'blocked';
  server: string;
  tool: string;
  identity?: string;
  pinned?: string;
  seen?: string;
  flags?: string[];
  requestId?: string;
}

/** Records that could not be kept (memory and spool full): how many, and when. */
export interface GapFields {
  kind: 'gap';
  lost: number;
  from: string;
  to: string;
}

export type AuditFields = CallFields | ToolFields | GapFields;

/** A sealed record as stored: the fields plus instance, sequence, time and the chain. */
export type AuditRecord = AuditFields & { v: 1; instance: string; seq: number; time: string; prev: string; hash: string };

/** The hash of a record: SHA-256 of its canonical JSON without `hash` (so it covers `prev` and `seq`). */
export function recordHash(record: Omit<AuditRecord, 'hash'> | Record<string, unknown>): string {
  const { hash: _ignored, ...body } = record as Record<string, unknown>;
  return sha256Hex(canonicalJson(body));
}

/**
 * Seals `fields` as record `seq` after `prev`; returns the JSON line (no newline) and its hash. The line is
 * the canonical JSON the hash is taken over, with `hash` appended: one object, one serialisation. Call
 * records (nearly all of them) are written directly in their fixed key order (call-line.ts); the general
 * way below gives the same bytes for them and serves every other record.
 */
export function seal(fields: AuditFields, at: ChainPosition): { line: string; hash: string } {
  return (fields.kind === 'call' ? sealCall(fields, at) : undefined) ?? sealAny(fields, at);
}

/** seal() for any record: keys collected and sorted, then canonical JSON. */
export function sealAny(fields: AuditFields, at: ChainPosition): { line: string; hash: string } {
  const source = fields as unknown as Record<string, unknown>;
  const keys = Object.keys(source);
  keys.push('instance', 'prev', 'seq', 'time', 'v');
  keys.sort();
  const body: Record<string, unknown> = {};
  let nested = false;
  for (const key of keys) {
    const value = key === 'instance' ? at.instance : key === 'prev' ? at.prev : key === 'seq' ? at.seq
      : key === 'time' ? at.time : key === 'v' ? 1 : source[key];
    if (value === undefined) continue;
    if (typeof value === 'object' && value !== null && (!Array.isArray(value) || value.some((x) => typeof x === 'object' && x !== null))) nested = true;
    body[key] = value;
  }
  // Keys inserted in sorted order and no nested objects: JSON.stringify is already the canonical form.
  const canonical = nested ? canonicalJson(body) : JSON.stringify(body);
  const hash = sha256Hex(canonical);
  return { line: `${canonical.slice(0, -1)},"hash":"${hash}"}`, hash };
}

const MAX_FIELD = 512;
const MAX_CHAIN = 64;

/** The call record for a finished request: what the context knows, bounded; never headers or bodies. */
export function callFields(ctx: RequestContext, status: number, traceId: string | undefined): CallFields {
  const out: CallFields = {
    kind: 'call', requestId: ctx.requestId, direction: ctx.direction, method: clip(ctx.method), status,
    durationMs: Math.round(ctx.elapsedMs() * 1000) / 1000,
  };
  if (ctx.caller !== undefined) out.caller = clip(ctx.caller);
  const user = userSubject(ctx.user);
  if (user !== undefined) out.user = user;
  const chain = chainOf(ctx.chain);
  if (chain !== undefined) out.chain = chain;
  if (ctx.target) out.target = `${ctx.target.kind}/${ctx.target.name}`;
  if (ctx.taskId !== undefined) out.taskId = clip(ctx.taskId);
  if (ctx.contextId !== undefined) out.contextId = clip(ctx.contextId);
  if (ctx.tool !== undefined) out.tool = clip(ctx.tool);
  const decision = decisionOf(ctx.decision);
  if (decision) {
    out.decision = decision;
    const { rule } = ctx.decision as { rule?: unknown };
    if (typeof rule === 'string') out.rule = clip(rule);
  }
  if (traceId !== undefined) out.traceId = traceId;
  return out;
}

/** ctx.user as the users layer sets it ({ subject, claims }): the subject only (claims may be personal data). */
function userSubject(user: unknown): string | undefined {
  if (typeof user === 'string') return clip(user);
  if (typeof user !== 'object' || user === null) return undefined;
  const subject = (user as { subject?: unknown; sub?: unknown }).subject ?? (user as { sub?: unknown }).sub;
  return typeof subject === 'string' ? clip(subject) : undefined;
}

/** ctx.chain: agent identities the call passed through, oldest first (the first MAX_CHAIN, strings only, clipped). */
function chainOf(chain: unknown): string[] | undefined {
  if (!Array.isArray(chain)) return undefined;
  const out = chain.slice(0, MAX_CHAIN) as unknown[];
  // The usual chain (strings only) is clipped in place: one array per record instead of three.
  for (let i = 0; i < out.length; i++) {
    const c = out[i];
    if (typeof c !== 'string') return out.filter((x): x is string => typeof x === 'string').map(clip);
    out[i] = clip(c);
  }
  return out as string[];
}

/** ctx.decision as the policy layer sets it ({ allowed, rule, mode }); its rule is read by callFields. */
function decisionOf(decision: unknown): Decision | undefined {
  if (typeof decision !== 'object' || decision === null) return undefined;
  const { allowed, mode } = decision as { allowed?: unknown; mode?: unknown };
  if (typeof allowed !== 'boolean') return undefined;
  return allowed ? 'allow' : mode === 'audit' ? 'would-deny' : 'deny';
}

/** The trace id of a W3C traceparent (version-traceid-parentid-flags), or of ctx.trace when a tracer set one. */
export function traceIdOf(trace: unknown, traceparent: string | string[] | undefined): string | undefined {
  if (typeof trace === 'object' && trace !== null) {
    const id = (trace as { traceId?: unknown }).traceId;
    if (typeof id === 'string' && /^[0-9a-f]{32}$/.test(id)) return id;
  }
  if (typeof traceparent !== 'string') return undefined;
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/.exec(traceparent);
  return m?.[1];
}

function clip(value: string): string {
  return value.length > MAX_FIELD ? value.slice(0, MAX_FIELD) : value;
}
