// The resilience state one sidecar keeps per target: a balancer (breakers, load) and a retry budget,
// created on first use, with events counted in the sidecar's metrics, and dropped by retain() once the
// target or instance has left the registry.
import { Balancer, type BreakerEvent, type BreakerSettings } from './balancer.ts';
import { RetryBudget } from './retry-budget.ts';

export interface RetrySettings {
  maxAttempts: number;
  backoff: number;
  maxBackoff: number;
  budgetRatio: number;
  budgetPerSecond: number;
}

/** Per-target policies, by the target's bare name (an agent or MCP server). */
export interface PolicySource {
  retry(name: string): RetrySettings;
  breaker(name: string): BreakerSettings;
}

export interface ResilienceState {
  /** `key` is `agent/{name}` or `mcp/{name}`; `name` picks the policy. */
  balancer(key: string, name: string): Balancer;
  budget(key: string, name: string): RetryBudget;
  retry(name: string): RetrySettings;
  onRetry(target: string, reason: string): void;
  snapshot(): Record<string, ReturnType<Balancer['snapshot']>>;
  /**
   * Keeps state only for live targets and instances: `live` maps each key (`agent/{name}`, `mcp/{name}`)
   * to its live instance ids. Targets not in it lose their balancer and retry budget.
   */
  retain(live: ReadonlyMap<string, ReadonlySet<string>>): void;
  /** Targets with state, and breakers (one per instance) across them, for /api/state. */
  counts(): { targets: number; budgets: number; breakers: number };
  close(): void;
}

export interface ResilienceEvents {
  onRetry: (target: string, reason: string) => void;
  onBreaker: (target: string, event: BreakerEvent) => void;
  /** An instance's state was dropped (it left the registry): its per-instance series can go. */
  onForget?: (target: string, instance: string) => void;
}

export function createResilienceState(policies: PolicySource, events: ResilienceEvents): ResilienceState {
  const balancers = new Map<string, Balancer>();
  const budgets = new Map<string, RetryBudget>();
  return {
    balancer(key, name) {
      let b = balancers.get(key);
      if (!b) balancers.set(key, (b = new Balancer(policies.breaker(name), (e) => events.onBreaker(key, e))));
      return b;
    },
    budget(key, name) {
      let b = budgets.get(key);
      if (!b) {
        const policy = policies.retry(name);
        budgets.set(key, (b = new RetryBudget(policy.budgetRatio, policy.budgetPerSecond)));
      }
      return b;
    },
    retry: (name) => policies.retry(name),
    onRetry: events.onRetry,
    snapshot() {
      return Object.fromEntries([...balancers].map(([k, b]) => [k, b.snapshot()]));
    },
    retain(live) {
      for (const [key, balancer] of balancers) {
        const instances = live.get(key) ?? new Set<string>();
        for (const instance of balancer.retain(instances)) events.onForget?.(key, instance);
        if (instances.size === 0) balancers.delete(key);
      }
      for (const key of budgets.keys()) if (!live.has(key)) budgets.delete(key);
    },
    counts() {
      let breakers = 0;
      for (const b of balancers.values()) breakers += b.size;
      return { targets: balancers.size, budgets: budgets.size, breakers };
    },
    close() {
      for (const b of balancers.values()) b.close();
      balancers.clear();
    },
  };
}
