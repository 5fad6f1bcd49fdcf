// Token buckets per (limit, caller, target): `rate` tokens per period, up to `burst` saved up. A call
// over its rate is refused with RATE_LIMITED and the wait until a token is back (Retry-After). The
// limits come from a function (config rateLimits today, the policy document's `limits` when it lands).
import { MeshError } from '../../sdk/errors.ts';
import type { RateLimitConfig } from '../config.ts';
import type { Target } from '../request-context.ts';

export interface RateLimit {
  /** Names the limit in errors; also keeps buckets of different limits apart. */
  name: string;
  rate: { tokens: number; perMs: number };
  burst?: number | undefined;
}

export type LimitsFor = (caller: string, target: Target, user: unknown) => readonly RateLimit[];

const MAX_BUCKETS = 100_000;
const NO_LIMITS: readonly RateLimit[] = [];

export class RateLimiter {
  readonly #limitsFor: LimitsFor;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(limitsFor: LimitsFor, now: () => number = () => performance.now()) {
    this.#limitsFor = limitsFor;
    this.#now = now;
  }

  /** Takes one token from every limit that applies, or throws RATE_LIMITED (nothing is taken then). */
  take(caller: string, target: Target, user?: unknown): void {
    const limits = this.#limitsFor(caller, target, user);
    if (limits.length === 0) return;
    const now = this.#now();
    const taken: { tokens: number; at: number }[] = [];
    for (const limit of limits) {
      const perMs = limit.rate.tokens / limit.rate.perMs;
      const capacity = limit.burst ?? Math.max(1, Math.ceil(limit.rate.tokens));
      const key = `${limit.name}\n${caller}\n${target.kind}/${target.name}`;
      let bucket = this.#buckets.get(key);
      if (!bucket) {
        if (this.#buckets.size >= MAX_BUCKETS) this.#buckets.delete(this.#buckets.keys().next().value ?? '');
        bucket = { tokens: capacity, at: now };
        this.#buckets.set(key, bucket);
      }
      bucket.tokens = Math.min(capacity, bucket.tokens + (now - bucket.at) * perMs);
      bucket.at = now;
      if (bucket.tokens < 1) {
        for (const b of taken) b.tokens += 1;
        const waitMs = Math.ceil((1 - bucket.tokens) / perMs);
        throw new MeshError('RATE_LIMITED', `${caller} is over its rate to ${target.kind === 'agent' ? 'agent' : 'MCP server'} '${target.name}' (limit '${limit.name}': ${limit.rate.tokens} per ${limit.rate.perMs / 1000}s, burst ${capacity}); retry in ${Math.ceil(waitMs / 1000)}s`, {
          retryAfterMs: waitMs, details: { limit: limit.name },
        });
      }
      bucket.tokens -= 1;
      taken.push(bucket);
    }
  }
}

/** The limits of config `rateLimits` that apply to a caller and target (identity globs, target name globs). */
export function configLimits(limits: readonly RateLimitConfig[]): LimitsFor {
  const compiled = limits.map((l, i) => ({
    limit: { name: l.name ?? `rateLimits[${i}]`, rate: l.rate, burst: l.burst },
    from: l.from.identity?.map(glob),
    kind: l.to.agent !== undefined ? 'agent' : 'mcp',
    to: glob(l.to.agent ?? l.to.mcp ?? ''),
  }));
  if (compiled.length === 0) return () => NO_LIMITS;
  return (caller, target) => compiled
    .filter((c) => c.kind === target.kind && c.to(target.name) && (!c.from || c.from.some((m) => m(caller))))
    .map((c) => c.limit);
}

/** `*` any run of characters, `?` one; everything else literal. */
function glob(pattern: string): (value: string) => boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
  return (value) => re.test(value);
}
