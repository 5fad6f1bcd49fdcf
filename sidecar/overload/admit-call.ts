// The few lines the inbound A2A path needs from admission: a slot for the call (streams counted apart),
// its release with what the outcome says about the agent, and the deadline left after a wait in the queue.
import { isMeshError } from '../../sdk/errors.ts';
import type { A2aMethod } from '../a2a/methods.ts';
import type { RequestContext } from '../request-context.ts';
import type { Admission, Departure, Permit } from './admission.ts';

/**
 * A slot for this call at the local agent (undefined when there is no admission, e.g. no agent yet).
 * Only calls that make the agent work (not reads such as GetTask, answered from its task store) teach
 * the limit its latency: a fast read would set a baseline no message can meet.
 */
export function admitCall(admission: Admission | undefined, caller: string, method: A2aMethod | undefined, budgetMs: number | undefined, gone: Departure): Permit | Promise<Permit> | undefined {
  const permit = admission?.acquire(caller, method?.streaming ? 'stream' : 'call', budgetMs, gone);
  if (permit === undefined || !method?.readOnly) return permit;
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
    permit.release(isMeshError(err, 'UPSTREAM_TIMEOUT') ? 'timeout' : 'other');
    throw err;
  }
}

/** The budget the call brought, less the time it has spent here (in the queue, mostly); at least 1 ms. */
export function budgetLeft(budgetMs: number | undefined, ctx: RequestContext): number | undefined {
  return budgetMs === undefined ? undefined : Math.max(1, Math.floor(budgetMs - ctx.elapsedMs()));
}
