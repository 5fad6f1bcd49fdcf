// Admission to the local agent: an adaptive concurrency limit, a bounded queue dequeued fairly across
// caller identities, a share of the limit per caller, and separate caps for long-lived streams. Refuses
// at once (429 over a caller's share, 503 when saturated or a deadline cannot be met); never answers late.
import { MeshError } from '../../sdk/errors.ts';
import { AdaptiveLimit, type AdaptiveLimitSettings, type LimitSnapshot } from './adaptive-limit.ts';

/** Per-caller settings (limits.callers, later also the policy document): a plain function input. */
export interface CallerLimits {
  /** A hard cap on the caller's concurrent calls, whatever the agent's limit. */
  maxConcurrent?: number | undefined;
  /** The caller's cap on open streams, instead of limits.streamsPerCaller. */
  maxStreams?: number | undefined;
  /** The caller's weight in the fair share (default 1). */
  weight?: number | undefined;
}

export interface AdmissionSettings {
  /** The local target's name (an agent, or an MCP server when `kind` says so), for messages. */
  agent: string;
  /** What the target is: 'agent' (default) or a local 'mcp' server. */
  kind?: 'agent' | 'mcp';
  concurrency: AdaptiveLimitSettings;
  /** Calls that may wait for a slot (all callers together). */
  queue: number;
  /** Open streams to the agent in all, and per caller. */
  streams: number;
  streamsPerCaller: number;
  callers: (caller: string) => CallerLimits | undefined;
  /** How long a call that brought no deadline may wait in the queue (ms). */
  maxQueueWaitMs: number;
  onReject?: (reason: RejectReason) => void;
  /** The clock latency is measured with (ms); performance.now by default, a fake one in tests. */
  now?: () => number;
}

export type RejectReason = 'caller-share' | 'caller-queue' | 'caller-streams' | 'streams' | 'queue-full' | 'deadline' | 'queue-timeout';
export type CallKind = 'call' | 'stream';
/** How an admitted call ended: 'ok' is a latency sample, 'timeout' shrinks the limit, 'other' says nothing. */
export type Outcome = 'ok' | 'timeout' | 'other';

export interface Permit {
  /** Frees the slot; idempotent. */
  release(outcome: Outcome): void;
}

/** Something that says when the caller went away (the ServerResponse). */
export interface Departure {
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

interface Waiter {
  caller: CallerState;
  /** When the call's deadline runs out (the admission clock), if it brought one. */
  deadlineAt: number | undefined;
  queuedAt: number;
  resolve: (permit: Permit) => void;
  reject: (err: MeshError) => void;
  timer: NodeJS.Timeout;
  gone: Departure | undefined;
  onGone: () => void;
}

interface CallerState {
  readonly id: string;
  readonly weight: number;
  readonly maxConcurrent: number | undefined;
  readonly maxStreams: number | undefined;
  inflight: number;
  streams: number;
  readonly queue: Waiter[];
  /** Counted in activeWeight (it has calls in flight or queued). */
  active: boolean;
}

export interface AdmissionSnapshot extends LimitSnapshot {
  /** Smoothed time between completions while the agent is kept busy (ms), 0 before it is known. */
  intervalMs: number;
  inflight: number;
  queued: number;
  streams: number;
  rejected: Record<RejectReason, number>;
  callers: { caller: string; inflight: number; queued: number; streams: number }[];
}

/**
 * The time a call needs at the agent, as a multiple of its smoothed latency: an average is exceeded by
 * half the calls, so a budget of just the average would see many of them time out at the agent.
 */
const HEADROOM = 1.5;
/** Weight of one gap in the smoothed time between completions. */
const GAP_SMOOTHING = 0.1;

export class Admission {
  readonly #settings: AdmissionSettings;
  readonly #limit: AdaptiveLimit;
  readonly #now: () => number;
  readonly #callers = new Map<string, CallerState>();
  /** Callers with queued calls, in the order the fair dequeue visits them. */
  readonly #rotation: CallerState[] = [];
  #cursor = 0;
  #inflight = 0;
  #queued = 0;
  #streams = 0;
  #streamCallers = 0;
  #activeWeight = 0;
  #closed = false;
  /** Smoothed time between two completions while the agent was kept busy (ms); 0 before it is known. */
  #gapMs = 0;
  /** When the last call completed while busy, to measure the next gap. */
  #lastDone: number | undefined;
  readonly #rejected: Record<RejectReason, number> = { 'caller-share': 0, 'caller-queue': 0, 'caller-streams': 0, streams: 0, 'queue-full': 0, deadline: 0, 'queue-timeout': 0 };

  constructor(settings: AdmissionSettings) {
    this.#settings = settings;
    this.#limit = new AdaptiveLimit(settings.concurrency);
    this.#now = settings.now ?? (() => performance.now());
  }

  /**
   * A slot for one call (`budgetMs`: its remaining deadline) or one stream. Resolves at once, after a
   * fair wait in the queue, or rejects with CALLER_OVER_LIMIT / OVERLOADED carrying a retry-after.
   */
  acquire(caller: string, kind: CallKind, budgetMs: number | undefined, gone?: Departure): Permit | Promise<Permit> {
    if (this.#closed) throw new MeshError('SHUTTING_DOWN', `${this.#label()} is shutting down`);
    const c = this.#state(caller);
    try {
      return kind === 'stream' ? this.#openStream(c) : this.#admitCall(c, budgetMs, gone);
    } finally {
      this.#tidy(c);
    }
  }

  snapshot(): AdmissionSnapshot {
    const callers = [...this.#callers.values()].sort((a, b) => (b.inflight + b.streams) - (a.inflight + a.streams)).slice(0, 20);
    return {
      ...this.#limit.snapshot(), intervalMs: Math.round(this.#gapMs * 10) / 10, inflight: this.#inflight, queued: this.#queued, streams: this.#streams, rejected: { ...this.#rejected },
      callers: callers.map((c) => ({ caller: c.id, inflight: c.inflight, queued: c.queue.length, streams: c.streams })),
    };
  }

  /** Refuses every queued call with SHUTTING_DOWN and all later ones; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of [...this.#rotation]) {
      for (const w of [...c.queue]) this.#unqueue(w, new MeshError('SHUTTING_DOWN', `${this.#label()} is shutting down`));
    }
  }

  #admitCall(c: CallerState, budgetMs: number | undefined, gone: Departure | undefined): Permit | Promise<Permit> {
    const limit = this.#limit.limit;
    const rtt = this.#limit.rttMs ?? 0;
    if (c.maxConcurrent !== undefined && c.inflight >= c.maxConcurrent) {
      throw this.#refuse('caller-share', c, `${c.inflight} calls in flight, its cap (limits.callers maxConcurrent)`, rtt);
    }
    // Even with a free slot: a budget below what the call would take there ends in a timeout at the agent.
    const need = this.#need(this.#inflight + 1);
    if (budgetMs !== undefined && budgetMs < need) {
      throw this.#refuse('deadline', c, `cannot answer within the call's remaining deadline of ${budgetMs} ms (it would take about ${Math.round(need / HEADROOM)} ms)`, rtt);
    }
    if (this.#inflight < limit) this.#dispatch();
    if (this.#inflight < limit) return this.#grant(c);
    const weight = this.#activeWeight + (c.active ? 0 : c.weight);
    const others = weight > c.weight;
    if (others && c.inflight >= share(limit, c.weight, weight)) {
      throw this.#refuse('caller-share', c, `${c.inflight} calls in flight, its fair share of the limit of ${limit}`, rtt);
    }
    if (others && c.queue.length >= share(this.#settings.queue, c.weight, weight)) {
      throw this.#refuse('caller-queue', c, `${c.queue.length} calls queued, its fair share of the queue (limits.queue ${this.#settings.queue})`, rtt);
    }
    // Its place in the queue times the time between completions: the wait before it starts.
    const waitMs = (this.#queued + 1) * this.#gap();
    if (this.#queued >= this.#settings.queue) {
      throw this.#refuse('queue-full', c, `is saturated: ${this.#inflight} calls in flight (limit ${limit}) and ${this.#queued} queued (limits.queue)`, waitMs);
    }
    // Half the budget: an estimate that is off (a busier agent, a starved CPU) still leaves time to answer.
    const runMs = this.#need(limit);
    if (budgetMs !== undefined && waitMs + runMs > budgetMs / 2) {
      throw this.#refuse('deadline', c, `cannot answer within the call's deadline of ${budgetMs} ms (about ${Math.round(waitMs)} ms queued + ${Math.round(runMs / HEADROOM)} ms)`, waitMs);
    }
    return this.#enqueue(c, budgetMs, gone);
  }

  /** The time between completions while busy: measured, else (conservatively) the agent's latency. */
  #gap(): number {
    return this.#gapMs > 0 ? this.#gapMs : (this.#limit.rttMs ?? 0);
  }

  /**
   * The time a call must still have when it starts with `inflight` calls running (itself included): the
   * agent's latency, or longer when more calls run than the agent serves at once (they wait inside it;
   * known only once the time between completions was measured), with headroom. 0 before the first sample.
   */
  #need(inflight: number): number {
    return Math.max(this.#limit.rttMs ?? 0, inflight * this.#gapMs) * HEADROOM;
  }

  #enqueue(c: CallerState, budgetMs: number | undefined, gone: Departure | undefined): Promise<Permit> {
    const maxWaitMs = Math.max(0, (budgetMs ?? this.#settings.maxQueueWaitMs) - this.#need(this.#limit.limit));
    const queuedAt = this.#now();
    return new Promise<Permit>((resolve, reject) => {
      const waiter: Waiter = {
        caller: c, resolve, reject, gone, queuedAt, deadlineAt: budgetMs === undefined ? undefined : queuedAt + budgetMs,
        timer: setTimeout(() => {
          this.#unqueue(waiter, this.#lateInQueue(c, maxWaitMs));
          this.#tidy(c);
        }, maxWaitMs),
        onGone: () => {
          this.#unqueue(waiter, new MeshError('ABORTED', 'caller closed the connection while its call was queued'));
          this.#tidy(c);
        },
      };
      waiter.timer.unref();
      gone?.once('close', waiter.onGone);
      if (c.queue.push(waiter) === 1) this.#rotation.push(c);
      this.#queued++;
    });
  }

  #lateInQueue(c: CallerState, waitedMs: number): MeshError {
    return this.#refuse('queue-timeout', c, `could not start the call in time: still saturated after ${Math.round(waitedMs)} ms in the queue`, this.#limit.rttMs ?? 0);
  }

  /** Takes a waiter out of the queue and rejects it. */
  #unqueue(w: Waiter, err: MeshError): void {
    const c = w.caller;
    const at = c.queue.indexOf(w);
    if (at < 0) return;
    c.queue.splice(at, 1);
    this.#queued--;
    if (c.queue.length === 0) this.#leaveRotation(c);
    clearTimeout(w.timer);
    w.gone?.off('close', w.onGone);
    w.reject(err);
  }

  #leaveRotation(c: CallerState): void {
    const at = this.#rotation.indexOf(c);
    if (at < 0) return;
    this.#rotation.splice(at, 1);
    if (at < this.#cursor) this.#cursor--;
    if (this.#cursor >= this.#rotation.length) this.#cursor = 0;
  }

  /**
   * Starts queued calls while there is room: round robin over callers under their share, then any caller.
   * A call whose deadline no longer covers the agent's latency leaves the queue refused instead of starting.
   */
  #dispatch(): void {
    while (this.#queued > 0 && this.#inflight < this.#limit.limit) {
      const c = this.#nextCaller(true) ?? this.#nextCaller(false);
      const w = c?.queue.shift();
      if (!c || !w) return;
      this.#queued--;
      if (c.queue.length === 0) this.#leaveRotation(c);
      else this.#cursor = (this.#rotation.indexOf(c) + 1) % this.#rotation.length;
      clearTimeout(w.timer);
      w.gone?.off('close', w.onGone);
      const now = this.#now();
      if (w.deadlineAt !== undefined && w.deadlineAt - now < this.#need(this.#inflight + 1)) {
        w.reject(this.#lateInQueue(c, now - w.queuedAt));
        this.#tidy(c);
        continue;
      }
      w.resolve(this.#grant(c));
    }
  }

  #nextCaller(withinShare: boolean): CallerState | undefined {
    const n = this.#rotation.length;
    const limit = this.#limit.limit;
    for (let i = 0; i < n; i++) {
      const c = this.#rotation[(this.#cursor + i) % n];
      if (!c || (c.maxConcurrent !== undefined && c.inflight >= c.maxConcurrent)) continue;
      if (!withinShare || c.inflight < share(limit, c.weight, this.#activeWeight)) return c;
    }
    return undefined;
  }

  #grant(c: CallerState): Permit {
    this.#inflight++;
    c.inflight++;
    this.#tidy(c);
    const started = this.#now();
    let done = false;
    return {
      release: (outcome) => {
        if (done) return;
        done = true;
        const now = this.#now();
        const took = now - started;
        if (outcome === 'ok') {
          this.#limit.sample(took, this.#inflight);
          this.#completed(now);
        }
        // A call that timed out quickly had little budget left (it waited long before): not the agent's doing.
        else if (outcome === 'timeout' && took > 2 * (this.#limit.rttMs ?? 0)) this.#limit.timeout(this.#inflight);
        this.#inflight--;
        c.inflight--;
        this.#tidy(c);
        this.#dispatch();
      },
    };
  }

  /** A call completed while others wait or the limit is full: the gap since the previous one is service time. */
  #completed(now: number): void {
    const busy = this.#queued > 0 || this.#inflight >= this.#limit.limit;
    if (busy && this.#lastDone !== undefined) {
      const gap = now - this.#lastDone;
      this.#gapMs = this.#gapMs === 0 ? gap : this.#gapMs + (gap - this.#gapMs) * GAP_SMOOTHING;
    }
    this.#lastDone = busy ? now : undefined;
  }

  #openStream(c: CallerState): Permit {
    const cap = c.maxStreams ?? this.#settings.streamsPerCaller;
    if (c.streams >= cap) throw this.#refuse('caller-streams', c, `${c.streams} streams open, its cap (limits.streamsPerCaller ${cap})`, 1000);
    if (this.#streams >= this.#settings.streams) {
      const fair = Math.ceil(this.#settings.streams / Math.max(1, this.#streamCallers));
      if (c.streams >= fair) throw this.#refuse('caller-streams', c, `${c.streams} streams open, its fair share of limits.streams ${this.#settings.streams}`, 1000);
      throw this.#refuse('streams', c, `has ${this.#streams} streams open (limits.streams)`, 1000);
    }
    this.#streams++;
    if (++c.streams === 1) this.#streamCallers++;
    let done = false;
    return {
      release: () => {
        if (done) return;
        done = true;
        this.#streams--;
        if (--c.streams === 0) this.#streamCallers--;
        this.#tidy(c);
      },
    };
  }

  #refuse(reason: RejectReason, c: CallerState, what: string, retryAfterMs: number): MeshError {
    this.#rejected[reason]++;
    this.#settings.onReject?.(reason);
    const callerFault = reason === 'caller-share' || reason === 'caller-queue' || reason === 'caller-streams';
    const message = callerFault
      ? `caller ${c.id} is over its share of ${this.#label()}: ${what}; try again later`
      : `${this.#label()} ${what}; try again later`;
    const target = this.#settings.kind === 'mcp' ? { server: this.#settings.agent } : { agent: this.#settings.agent };
    return new MeshError(callerFault ? 'CALLER_OVER_LIMIT' : 'OVERLOADED', message, { retryAfterMs, details: { ...target, reason } });
  }

  /** "agent 'x'" or "MCP server 'x'", for messages. */
  #label(): string {
    return this.#settings.kind === 'mcp' ? `MCP server '${this.#settings.agent}'` : `agent '${this.#settings.agent}'`;
  }

  #state(id: string): CallerState {
    let c = this.#callers.get(id);
    if (!c) {
      const limits = this.#settings.callers(id);
      c = {
        id, weight: limits?.weight ?? 1, maxConcurrent: limits?.maxConcurrent, maxStreams: limits?.maxStreams,
        inflight: 0, streams: 0, queue: [], active: false,
      };
      this.#callers.set(id, c);
    }
    return c;
  }

  /** Keeps activeWeight true and forgets callers with nothing in flight. */
  #tidy(c: CallerState): void {
    const active = c.inflight + c.queue.length > 0;
    if (active !== c.active) {
      c.active = active;
      this.#activeWeight += active ? c.weight : -c.weight;
    }
    if (!active && c.streams === 0) this.#callers.delete(c.id);
  }
}

/** A fair portion of `total` for a caller of `weight` among active callers weighing `allWeight`; at least 1. */
function share(total: number, weight: number, allWeight: number): number {
  return Math.max(1, Math.floor((total * weight) / Math.max(weight, allWeight)));
}
