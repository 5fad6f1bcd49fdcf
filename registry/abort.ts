// AbortSignal plumbing shared by the registry's files: abort checks that throw the catalog's ABORTED,
// a race that cleans up work finishing after its caller gave up, and an unref'd interruptible pause.
import { MeshError } from '../sdk/errors.ts';

export function abortError(signal: AbortSignal, what: string): MeshError {
  return new MeshError('ABORTED', `${what} aborted`, { cause: signal.reason });
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(signal, what);
}

/** Rejects with ABORTED when `signal` fires first; a value that arrives afterwards goes to `onLate`. */
export function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined, what: string, onLate?: (value: T) => void): Promise<T> {
  if (!signal) return work;
  throwIfAborted(signal, what);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(abortError(signal, what));
      work.then((value) => onLate?.(value), () => undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => { signal.removeEventListener('abort', onAbort); resolve(value); },
      (err: unknown) => { signal.removeEventListener('abort', onAbort); reject(err); },
    );
  });
}

/** Waits `ms` (an unref'd timer) or until `wake` is called or `signal` aborts, whichever comes first. */
export function pause(ms: number, signal?: AbortSignal): { done: Promise<void>; wake: () => void } {
  let wake: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(finish, ms);
    timer.unref();
    function finish(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      resolve();
    }
    wake = finish;
    signal?.addEventListener('abort', finish, { once: true });
  });
  return { done, wake };
}
