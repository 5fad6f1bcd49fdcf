// Exactly-once for calls that are not idempotent (A2A SendMessage): once a call may have reached an
// instance it is never sent to another one; when that instance can no longer be asked, the caller gets
// OUTCOME_UNKNOWN naming the message id and the instance, so it can look the task up there.
import { MeshError } from '../../sdk/errors.ts';

/** The error for a call whose outcome at `instance` cannot be learned. Without a message id: the old error. */
export function outcomeUnknown(target: string, messageId: string | undefined, instance: { instance: string; identity: string }, cause: unknown): MeshError {
  const why = cause instanceof Error ? cause.message : String(cause);
  const id = messageId !== undefined && messageId.length > 200 ? `${messageId.slice(0, 200)}…` : messageId;
  if (messageId === undefined) {
    return cause instanceof MeshError ? cause : new MeshError('UPSTREAM_UNAVAILABLE', `${target}: ${why}`, { cause });
  }
  return new MeshError('OUTCOME_UNKNOWN',
    `${target}: message '${id}' may have reached instance '${instance.instance}' (${instance.identity}), which can no longer be asked (${why}); ` +
    'it was not sent to another instance — look the task up before sending it again',
    { cause, details: { messageId, instance: instance.instance } });
}

/** The deadline passed while a message may have been running at `instance`: the timeout names both. */
export function timedOutAt(ended: MeshError, messageId: string | undefined, instance: { instance: string } | undefined): MeshError {
  if (ended.code !== 'UPSTREAM_TIMEOUT' || messageId === undefined || instance === undefined) return ended;
  const id = messageId.length > 200 ? `${messageId.slice(0, 200)}…` : messageId;
  return new MeshError('UPSTREAM_TIMEOUT', `${ended.message}; message '${id}' may have reached instance '${instance.instance}' — look the task up before sending it again`, {
    cause: ended.cause, details: { ...ended.details, messageId, instance: instance.instance },
  });
}
