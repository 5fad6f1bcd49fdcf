// The resilience state one sidecar keeps per target: a balancer (breakers, load) and a retry budget,
// created on first use, with events counted in the sidecar's metrics.
import { Balancer, DEFAULT_BREAKER, type BreakerEvent } from './balancer.ts';
import { RetryBudget } from './retry-budget.ts';

export interface ResilienceState {
  balancer(target: string): Balancer;
  budget(target: string): RetryBudget;
  onRetry(target: string, reason: string): void;
  snapshot(): Record<string, ReturnType<Balancer['snapshot']>>;
  close(): void;
}

export function createResilienceState(events: { onRetry: (target: string, reason: string) => void; onBreaker: (target: string, event: BreakerEvent) => void }): ResilienceState {
  const balancers = new Map<string, Balancer>();
  const budgets = new Map<string, RetryBudget>();
  return {
    balancer(target) {
      let b = balancers.get(target);
      if (!b) balancers.set(target, (b = new Balancer(DEFAULT_BREAKER, (e) => events.onBreaker(target, e))));
      return b;
    },
    budget(target) {
      let b = budgets.get(target);
      if (!b) budgets.set(target, (b = new RetryBudget()));
      return b;
    },
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
