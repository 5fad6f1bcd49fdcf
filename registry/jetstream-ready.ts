// Start-up against a JetStream that is not ready yet: a fresh cluster has no meta leader for a few
// seconds, and a stream of R3 needs three peers to have joined. Creating or binding a bucket or stream
// is retried while the server says so (no responders, a timeout, "temporarily unavailable",
// "insufficient resources"), up to a deadline; anything else fails at once. Loaded only with the NATS client.
import { setTimeout as delay } from 'node:timers/promises';
import { NoRespondersError, TimeoutError } from '@nats-io/transport-node';
import { JetStreamApiError } from '@nats-io/jetstream';
import { MeshError } from '../sdk/errors.ts';

/** JetStream API codes that mean "not yet": no leader (10008), not enough peers for the replicas (10023). */
const NOT_READY_CODES: ReadonlySet<number> = new Set([10008, 10023]);

/** How long start-up waits for JetStream before it gives up. */
export const JETSTREAM_READY_TIMEOUT_MS = 30_000;

/** True for an error (or a cause of one) that a JetStream still electing leaders answers with. */
export function jetStreamNotReady(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof NoRespondersError || e instanceof TimeoutError || e.name === 'JetStreamNotEnabled') return true;
    if (e instanceof JetStreamApiError && NOT_READY_CODES.has(e.code)) return true;
  }
  return false;
}

/** Runs `fn`, again after a back-off while JetStream is not ready, until `timeoutMs`; `what` names it in the error. */
export async function whenJetStreamReady<T>(what: string, fn: () => Promise<T>, timeoutMs = JETSTREAM_READY_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let wait = 250;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!jetStreamNotReady(err)) throw err;
      if (Date.now() + wait > deadline) {
        throw new MeshError('REGISTRY_UNAVAILABLE', `${what}: JetStream was not ready within ${timeoutMs} ms (${(err as Error).message})`, { cause: err });
      }
      await delay(wait);
      wait = Math.min(wait * 2, 2000);
    }
  }
}
