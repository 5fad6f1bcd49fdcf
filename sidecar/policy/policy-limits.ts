// The policy's `limits` and `push.allow` for the users layer (rate and concurrency limiters, push-target
// checks): they apply together with the config's `rateLimits` and `push.allow`. Read per call from the policy in force,
// so a new version changes them too; no allocation per call unless both sources hold limits.
import type { SidecarConfig } from '../config.ts';
import { configLimits, type LimitsFor, type RateLimit } from '../users/rate-limiter.ts';
import type { ConcurrencyFor, ConcurrencyLimit } from '../users/concurrency-limiter.ts';
import type { ResolvedLimit } from './policy-engine.ts';
import type { PolicyGate } from './policy-gate.ts';

export interface PolicyUsersSource {
  limitsFor: LimitsFor;
  concurrencyFor: ConcurrencyFor;
  pushAllow: () => readonly string[] | undefined;
}

const NO_CONCURRENCY: readonly ConcurrencyLimit[] = Object.freeze([]);

export function policyUsersSource(gate: PolicyGate, config: Pick<SidecarConfig, 'rateLimits' | 'push'>): PolicyUsersSource {
  const configured = configLimits(config.rateLimits);
  const hasConfigured = config.rateLimits.length > 0;
  /** The rate limits among a cached list of the policy's limits (concurrency-only ones left out). */
  const rated = new WeakMap<readonly ResolvedLimit[], readonly RateLimit[]>();
  /** The concurrency limits among a cached list of the policy's limits. */
  const concurrent = new WeakMap<readonly ResolvedLimit[], readonly ConcurrencyLimit[]>();
  const pushMerged = new WeakMap<readonly string[], readonly string[]>();
  return {
    limitsFor(caller, target, user) {
      if (!gate.policy) return configured(caller, target, user);
      const all = gate.limitsFor(caller, target, user);
      let fromPolicy = rated.get(all);
      if (!fromPolicy) {
        fromPolicy = all.filter((l): l is ResolvedLimit & RateLimit => l.rate !== undefined);
        rated.set(all, fromPolicy);
      }
      return hasConfigured ? [...fromPolicy, ...configured(caller, target, user)] : fromPolicy;
    },
    concurrencyFor(caller, target, user) {
      const all = gate.limitsFor(caller, target, user);
      if (all.length === 0) return NO_CONCURRENCY;
      let found = concurrent.get(all);
      if (!found) {
        found = all.filter((l): l is ResolvedLimit & ConcurrencyLimit => l.concurrency !== undefined);
        concurrent.set(all, found);
      }
      return found;
    },
    pushAllow() {
      const fromPolicy = gate.pushAllow();
      if (!fromPolicy) return undefined; // the config's alone
      let merged = pushMerged.get(fromPolicy);
      if (!merged) {
        merged = [...new Set([...config.push.allow, ...fromPolicy])];
        pushMerged.set(fromPolicy, merged);
      }
      return merged;
    },
  };
}
