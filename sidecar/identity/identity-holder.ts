// The sidecar's current workload identity, swapped in place when the certificate is renewed or its files
// change: current() is what new connections use, onChange() tells the listeners, notReady() says why not.
import { X509Certificate } from 'node:crypto';
import { MeshError } from '../../sdk/errors.ts';
import type { Identity } from './tls.ts';

export interface IdentitySource {
  /** The identity new connections use now. */
  current(): Identity;
  /** Called after every swap with the new and the previous identity; returns an unsubscribe function. */
  onChange(listener: (next: Identity, previous: Identity) => void): () => void;
  /** /readyz reasons: the certificate has expired, or less than a quarter of its lifetime is left. */
  notReady(now?: number): string[];
  /** Stops renewal or file watching. Idempotent. */
  close(): void;
}

export class IdentityHolder implements IdentitySource {
  #current: Identity;
  #startMs: number;
  #failing: string | undefined;
  readonly #listeners = new Set<(next: Identity, previous: Identity) => void>();
  readonly #stoppers: (() => void)[] = [];

  /** `startMs`: when this certificate's lifetime began for renewal purposes (receipt, or its notBefore). */
  constructor(initial: Identity, startMs = validFrom(initial)) {
    this.#current = initial;
    this.#startMs = startMs;
  }

  current(): Identity {
    return this.#current;
  }

  /** When the certificate's lifetime began (for half-life and quarter-life). */
  startMs(): number {
    return this.#startMs;
  }

  /** Replaces the identity (same SPIFFE ID only) and notifies the listeners. */
  swap(next: Identity, startMs = validFrom(next)): void {
    const previous = this.#current;
    if (next.id !== previous.id) {
      throw new MeshError('IDENTITY_INVALID', `the new certificate is for ${next.id}, but this sidecar is ${previous.id}; keeping the old one`);
    }
    this.#current = next;
    this.#startMs = startMs;
    this.#failing = undefined;
    for (const listener of this.#listeners) listener(next, previous);
  }

  /** Records why renewal or reload is failing (undefined once it works again); shown in notReady(). */
  failing(reason: string | undefined): void {
    this.#failing = reason;
  }

  onChange(listener: (next: Identity, previous: Identity) => void): () => void {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }

  notReady(now = Date.now()): string[] {
    const { id, notAfter } = this.#current;
    const end = notAfter.getTime();
    const failing = this.#failing ? `; renewal failing: ${this.#failing}` : '';
    if (now >= end) return [`certificate ${id} expired at ${notAfter.toISOString()}${failing}`];
    if (end - now < (end - this.#startMs) / 4) return [`certificate ${id} expires in ${Math.ceil((end - now) / 1000)}s${failing}`];
    return [];
  }

  /** Registers teardown for whatever keeps this identity fresh. */
  onClose(stop: () => void): void {
    this.#stoppers.push(stop);
  }

  close(): void {
    for (const stop of this.#stoppers.splice(0)) stop();
    this.#listeners.clear();
  }
}

function validFrom(identity: Identity): number {
  return Date.parse(new X509Certificate(identity.certPem).validFrom);
}
