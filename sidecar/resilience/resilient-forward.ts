// One outbound call with per-hop resilience: picks an instance (affinity first, then power of two
// choices), runs each attempt under that instance's breaker, and retries only where it is safe — a
// connection that failed before the request was sent (any method), or 502/503/504/429 for idempotent
// methods — within the target's retry budget, with full-jitter backoff, under one deadline. A call that
// is not idempotent never moves once it may have reached an instance (see exactly-once.ts).
import type { ServerResponse } from 'node:http';
// The module object, not a named binding: node:test's mock.timers can then stand in for the waits.
import timers from 'node:timers/promises';
import pRetry from 'p-retry';
import type { Dispatcher } from 'undici';
import { MeshError } from '../../sdk/errors.ts';
import { RETRIED_HEADER } from '../../sdk/mesh-headers.ts';
import { CallScope } from '../transport/call-scope.ts';
import { send, type ForwardRequest, type RelayOptions, type ResponseHeaders, type Upstream } from '../transport/proxy.ts';
import { StatusFailure, type Balancer } from './balancer.ts';
import { outcomeUnknown, timedOutAt } from './exactly-once.ts';
import { fullJitter, type RetryBudget } from './retry-budget.ts';

export interface Instance {
  instance: string;
  endpoint: string;
  identity: string;
}

export interface ResilientCall<R extends Instance> {
  candidates: () => R[];
  /** An instance to try first (task or session affinity). */
  preferred?: string | undefined;
  /** When true, no other instance may serve the call (e.g. an MCP session). */
  pinned?: boolean;
  idempotent: boolean;
  /**
   * For A2A SendMessage: a connection lost after the request was sent may be resent to the same
   * instance, whose sidecar deduplicates by messageId and answers with the first outcome.
   */
  resendOnLoss?: boolean;
  /** Attempts in all, and the full-jitter backoff between them. */
  retry: { maxAttempts: number; backoff: number; maxBackoff: number };
  balancer: Balancer;
  budget: RetryBudget;
  dispatcher: (record: R) => Dispatcher;
  request: Omit<ForwardRequest, 'dispatcher' | 'origin' | 'target' | 'onResponse' | 'observe'>;
  /** "agent 'x'" — for errors. */
  target: string;
  onRetry: (reason: string) => void;
  onResponse?: (record: R, status: number, headers: ResponseHeaders) => void;
  /** See RelayOptions.meshErrorsAsOk: set on the agent-facing A2A JSON-RPC route. */
  meshErrorsAsOk?: boolean;
  /** Sees the first chunk of the answering instance's body (e.g. to learn a task id). */
  tap?: (record: R, firstChunk: Buffer) => void;
  /** The A2A message id the call carries: named when its outcome cannot be learned (OUTCOME_UNKNOWN). */
  messageId?: string | undefined;
  /**
   * Which answers count against the instance in balancing and ejection although they are relayed as they
   * are (fast failures must not make an instance look cheap). Default: any 5xx.
   */
  isFault?: (status: number, headers: ResponseHeaders) => boolean;
}

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
/** Failures where the request provably never reached the peer. */
const NOT_SENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'PEER_IDENTITY_MISMATCH']);

export async function resilientForward<R extends Instance>(call: ResilientCall<R>, res: ServerResponse): Promise<R> {
  const started = performance.now();
  const scope = new CallScope(res, call.request.timeoutMs, call.target);
  /** Every instance tried so far; made when a second attempt starts (until then it is `last` alone, if any). */
  let tried: Set<string> | undefined;
  const triedSoFar = (): Set<string> => (tried ??= new Set(last === undefined ? [] : [last.instance]));
  let retries = 0;
  /** The instance of the current (or the last) attempt. */
  let last: R | undefined;
  let stickTo: R | undefined;
  /** A non-idempotent call that may have reached this instance: it goes nowhere else from now on. */
  let reached: R | undefined;
  const isFault = call.isFault ?? anyServerError;
  call.budget.onRequest();
  /** The request to `last`, run under its breaker: one closure per call, not per attempt (attempts run one at a time). */
  const sendToLast = async (): Promise<Upstream> => {
    const record = last as R;
    // A throw here (e.g. our own identity refused) is before the request was handed to the connection.
    const dispatcher = call.dispatcher(record);
    try {
      const r = call.request;
      const response = await send({
        dispatcher, origin: record.endpoint, target: hopTarget(call.target, record), method: r.method, path: r.path, headers: r.headers,
        body: r.body, maxSseEvent: r.maxSseEvent, errorContext: r.errorContext,
      }, scope);
      if (RETRYABLE_STATUS.has(response.statusCode) || isFault(response.statusCode, response.headers)) {
        throw new StatusFailure(response.statusCode, response, retryAfterMs(response.headers));
      }
      return response;
    } catch (err) {
      if (!call.idempotent && reached === undefined && !notSent(err as Error)) reached = record;
      throw err;
    }
  };
  /** One attempt; it answers with the upstream of `last`. Not async: choose() may throw, and the awaiting code catches that too. */
  const attempt = (n: number): Promise<Upstream> => {
    // One read of the live instances per attempt (each read filters the registry's records).
    const list = call.candidates();
    const record = reached ?? stickTo ?? choose(call, list, last === undefined ? NOTHING_TRIED : triedSoFar(), n);
    stickTo = undefined;
    if (last !== undefined) triedSoFar().add(record.instance);
    last = record;
    // Only the instance the call may have reached can tell its outcome: its breaker does not stand in the way.
    const alone = reached !== undefined || call.pinned === true || list.length <= 1;
    return call.balancer.call(record.instance, alone, sendToLast);
  };
  /** Moving a call that never reached an instance to another one costs nobody anything: no retry, no budget. */
  const free = (error: Error): boolean => reached === undefined && notSent(error) && call.candidates().some((c) => !triedSoFar().has(c.instance));
  const shouldRetry = async (error: Error, attemptNumber: number): Promise<boolean> => {
    if (scope.ended || (call.pinned && !notSent(error))) return false;
    // A fault that is not a retryable status (a fast 404, a 500) is relayed as it is.
    if (error instanceof StatusFailure && !RETRYABLE_STATUS.has(error.status)) return false;
    // The instance the call may have reached is down or gone: nobody else may run it, and it cannot be asked.
    if (reached !== undefined && (notSent(error) || !call.candidates().some((c) => c.instance === reached?.instance))) return false;
    const isFree = free(error);
    const resend = call.resendOnLoss === true && connectionLost(error) && last !== undefined && call.candidates().some((c) => c.instance === last?.instance);
    const safe = isFree || notSent(error) || resend || (call.idempotent && error instanceof StatusFailure && !alreadyRetried(error));
    const wait = error instanceof StatusFailure && error.retryAfterMs !== undefined ? Math.min(error.retryAfterMs, 5000) : isFree ? 0 : fullJitter(attemptNumber, call.retry.backoff, call.retry.maxBackoff);
    // A wait that outlasts the deadline: the caller gets the peer's answer (e.g. 503 + Retry-After) now, not a timeout later.
    if (wait > 0 && call.request.timeoutMs !== undefined && wait >= call.request.timeoutMs - (performance.now() - started)) return false;
    if (!safe || (!isFree && !call.budget.tryWithdraw())) return false;
    if (error instanceof StatusFailure) await (error.response as Upstream).discard();
    if (wait > 0) await timers.setTimeout(wait, undefined, { signal: scope.signal }).catch(() => undefined);
    if (resend) stickTo = last;
    retries++;
    call.onRetry(retryReason(error));
    return !scope.ended;
  };
  let upstream: Upstream;
  try {
    try {
      // The first attempt, which nearly always answers, runs bare; p-retry runs the retries.
      upstream = await attempt(1);
    } catch (first) {
      const error = first instanceof Error ? first : new Error(String(first));
      const retriesLeft = call.retry.maxAttempts - 1 - (free(error) ? 0 : 1);
      if (call.retry.maxAttempts <= 1 || !(await shouldRetry(error, 1))) throw first;
      upstream = await pRetry((n) => attempt(n + 1), {
        retries: Math.max(0, retriesLeft), minTimeout: 0, maxTimeout: 0, unref: true,
        // A breaker that refuses costs no retry: the call just moves to another instance.
        shouldConsumeRetry: ({ error: e }) => !free(e),
        shouldRetry: ({ error: e, attemptNumber }) => shouldRetry(e, attemptNumber + 1),
      });
    }
  } catch (err) {
    const extraHeaders = retries > 0 ? { [RETRIED_HEADER]: String(retries) } : undefined;
    if (err instanceof StatusFailure && !scope.ended) {
      // Out of retries: the caller gets the peer's own answer.
      await (err.response as Upstream).relay(res, { ...(extraHeaders ? { extraHeaders } : {}), ...(call.meshErrorsAsOk ? { meshErrorsAsOk: true } : {}) });
      return [...triedSoFar()].map((id) => call.candidates().find((c) => c.instance === id)).find(Boolean) as R;
    }
    scope.finish();
    if (scope.ended) throw timedOutAt(scope.ended, call.messageId, reached);
    if (reached !== undefined) throw outcomeUnknown(call.target, call.messageId, reached, err);
    throw err instanceof MeshError ? err : new MeshError('UPSTREAM_UNAVAILABLE', `${call.target}: ${(err as Error).message}`, { cause: err });
  }
  // The attempt that answered was the last one.
  const record = last as R;
  call.onResponse?.(record, upstream.statusCode, upstream.headers);
  await upstream.relay(res, relayOptions(call, record, retries));
  return record;
}

const NOTHING_TRIED: ReadonlySet<string> = new Set();

/**
 * The relay options of an answer. Without retries nothing in them is per call: shared ones, or the tap
 * bound to the instance kept per instance record (the agent route's tap is made once per agent).
 */
function relayOptions<R extends Instance>(call: ResilientCall<R>, record: R, retries: number): RelayOptions {
  const tap = call.tap;
  const asOk = call.meshErrorsAsOk === true;
  if (retries === 0) {
    if (!tap) return asOk ? AS_OK : PLAIN;
    const known = taps.get(record);
    if (known?.tap === tap && known.asOk === asOk) return known.options;
  }
  const options: RelayOptions = {};
  if (asOk) options.meshErrorsAsOk = true;
  if (retries > 0) options.extraHeaders = { [RETRIED_HEADER]: String(retries) };
  if (tap) {
    options.tap = (chunk: Buffer) => tap(record, chunk);
    if (retries === 0) taps.set(record, { tap: tap as Tap, asOk, options });
  }
  return options;
}

type Tap = (record: Instance, chunk: Buffer) => void;
const PLAIN: RelayOptions = Object.freeze({});
const AS_OK: RelayOptions = Object.freeze({ meshErrorsAsOk: true });
const taps = new WeakMap<Instance, { tap: Tap; asOk: boolean; options: RelayOptions }>();

const anyServerError = (status: number): boolean => status >= 500;

/** "agent 'x' (spiffe://…)", for errors naming the hop: made once per target and instance, not per call. */
const hopTargets = new WeakMap<Instance, { target: string; text: string }>();
function hopTarget(target: string, record: Instance): string {
  const known = hopTargets.get(record);
  if (known?.target === target) return known.text;
  const text = `${target} (${record.identity})`;
  hopTargets.set(record, { target, text });
  return text;
}

function choose<R extends Instance>(call: ResilientCall<R>, list: R[], tried: ReadonlySet<string>, attempt: number): R {
  const preferred = call.preferred === undefined ? undefined : list.find((r) => r.instance === call.preferred);
  if (preferred && (attempt === 1 || call.pinned)) return preferred;
  if (call.pinned) throw new MeshError('UPSTREAM_UNAVAILABLE', `${call.target}: the instance holding this session (${call.preferred}) is gone`);
  const pick = call.balancer.pick(list, tried) ?? call.balancer.pick(list, new Set());
  if (!pick) throw new MeshError('UPSTREAM_UNAVAILABLE', `${call.target}: no live instance left`);
  return pick;
}

/** A short, bounded reason for metrics: `HTTP 503`, `circuit-open`, or the deepest system error code. */
function retryReason(error: Error): string {
  if (error instanceof StatusFailure) return `HTTP ${error.status}`;
  if (isOpenBreaker(error)) return 'circuit-open';
  let reason = (error as { code?: string }).code ?? 'other';
  for (let e: unknown = error.cause; e instanceof Error; e = e.cause) {
    const code = (e as { code?: string }).code;
    if (code && /^(E[A-Z]+|UND_ERR_[A-Z_]+|PEER_IDENTITY_MISMATCH)$/.test(code)) reason = code;
  }
  return reason;
}

/** The connection broke after the request may have been sent (so only a deduplicated resend is safe). */
function connectionLost(error: Error): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (LOST.has((e as { code?: string }).code ?? '')) return true;
  }
  return false;
}
const LOST = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

function notSent(error: Error): boolean {
  if (isOpenBreaker(error)) return true;
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (NOT_SENT.has((e as { code?: string }).code ?? '')) return true;
  }
  return false;
}

function isOpenBreaker(error: Error): boolean {
  return error instanceof MeshError && error.details?.breaker === 'open';
}

function alreadyRetried(error: StatusFailure): boolean {
  return (error.response as Upstream).headers[RETRIED_HEADER] !== undefined;
}

function retryAfterMs(headers: Record<string, string | string[] | undefined>): number | undefined {
  const value = headers['retry-after'];
  if (typeof value !== 'string') return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
