// The resilience state one sidecar keeps per target: a balancer (breakers, load) and a retry budget,
// created on first use, with events counted in the sidecar's metrics.
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
  close(): void;
}

export function createResilienceState(policies: PolicySource, events: { onRetry: (target: string, reason: string) => void; onBreaker: (target: string, event: BreakerEvent) => void }): ResilienceState {
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
    close() {
      for (const b of balancers.values()) b.close();
      balancers.clear();
    },
  };
}
