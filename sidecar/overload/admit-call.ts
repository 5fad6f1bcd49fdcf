// The few lines the inbound A2A and MCP paths need from admission: a slot for the call (streams counted apart),
// its release with what the outcome says about the agent, and the deadline left after a wait in the queue.
import { isMeshError } from '../../sdk/errors.ts';
import type { A2aMethod } from '../a2a/methods.ts';
import type { RequestContext } from '../request-context.ts';
import type { Admission, CallKind, Departure, Outcome, Permit } from './admission.ts';

/**
 * A slot for this call at the local agent (undefined when there is no admission, e.g. no agent yet).
 * Only calls that make the agent work (not reads such as GetTask, answered from its task store) teach
 * the limit its latency: a fast read would set a baseline no message can meet.
 */
export function admitCall(admission: Admission | undefined, caller: string, method: A2aMethod | undefined, budgetMs: number | undefined, gone: Departure): Permit | Promise<Permit> | undefined {
  return admitRequest(admission, caller, method?.streaming ? 'stream' : 'call', !method?.readOnly, budgetMs, gone);
}

/**
 * The same for a request to a local MCP server: its GET (the server's SSE stream) is a stream; only
 * requests that make the server work (tools/call …, not lists, reads, pings or notifications) teach the
 * limit its latency.
 */
export function admitMcp(admission: Admission | undefined, caller: string, httpMethod: string, sampled: boolean, budgetMs: number | undefined, gone: Departure): Permit | Promise<Permit> | undefined {
  return admitRequest(admission, caller, httpMethod === 'GET' ? 'stream' : 'call', httpMethod === 'POST' && sampled, budgetMs, gone);
}

function admitRequest(admission: Admission | undefined, caller: string, kind: CallKind, sampled: boolean, budgetMs: number | undefined, gone: Departure): Permit | Promise<Permit> | undefined {
  const permit = admission?.acquire(caller, kind, budgetMs, gone);
  if (permit === undefined || sampled) return permit;
  return permit instanceof Promise ? permit.then(unsampled) : unsampled(permit);
}

function unsampled(permit: Permit): Permit {
  return { release: (outcome) => permit.release(outcome === 'ok' ? 'other' : outcome) };
}

/** Waits for the forwarded call and releases its slot: a timeout shrinks the limit, an answer is a latency sample. */
export async function admitted(permit: Permit | undefined, work: Promise<void>): Promise<void> {
  if (!permit) return work;
  try {
    await work;
    permit.release('ok');
  } catch (err) {
    permit.release(failedOutcome(err));
    throw err;
  }
}

/** What a forwarded call that failed with `err` tells the limit (as admitted() releases it): a timeout shrinks it. */
export function failedOutcome(err: unknown): Outcome {
  return isMeshError(err, 'UPSTREAM_TIMEOUT') ? 'timeout' : 'other';
}

/** Work between admission and forwarding (e.g. signing headers): if it fails, the slot is given back at once. */
export async function beforeForwarding<T>(permit: Permit | undefined, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    permit?.release('other');
    throw err;
  }
}

/** The budget the call brought, less the time it has spent here (in the queue, mostly); at least 1 ms. */
export function budgetLeft(budgetMs: number | undefined, ctx: RequestContext): number | undefined {
  return budgetMs === undefined ? undefined : Math.max(1, Math.floor(budgetMs - ctx.elapsedMs()));
}
