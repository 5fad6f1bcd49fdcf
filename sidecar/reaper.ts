// Drops per-instance state of instances that left the registry: connection pools, breakers and
// balancers, retry budgets, remembered MCP session owners, federated upstream clients. Runs at most
// once per `delayMs` after the registry view changes (never per request), and counts what is held.
import type { RegistryView } from '../registry/index.ts';
import { PeerPools } from './transport/peers.ts';
import type { ResilienceState } from './resilience/state.ts';

export interface ReaperDeps {
  view: RegistryView;
  peers: PeerPools;
  resilience: ResilienceState;
  /** Outbound `/mcp/{server}` session owners. */
  mcp: { retain(live: ReadonlyMap<string, ReadonlySet<string>>): void; sessions(): number };
  federation: { retain(servers: ReadonlySet<string>): void; counts(): { sessions: number; upstreams: number } };
  /** Stdio MCP sessions this sidecar serves. */
  localSessions: () => number;
  /** Called with what a pass dropped, when it dropped anything. */
  onReaped?: (dropped: { pools: number; breakers: number; targets: number }) => void;
  delayMs?: number;
}

export interface Reaper {
  /** One pass now (tests, and the pass the timer runs). */
  reap(): void;
  /** What the sidecar holds, for /api/state `resources`. */
  resources(): Record<string, unknown>;
  close(): void;
}

export function startReaper(deps: ReaperDeps): Reaper {
  const delayMs = deps.delayMs ?? 500;
  let timer: NodeJS.Timeout | undefined;
  const schedule = (): void => {
    if (timer) return;
    timer = setTimeout(() => { timer = undefined; reap(); }, delayMs);
    timer.unref();
  };

  function reap(): void {
    const pools = new Set<string>();
    const live = new Map<string, Set<string>>();
    const add = (key: string, record: { instance: string; endpoint: string; identity: string }): void => {
      pools.add(PeerPools.key(record.endpoint, record.identity));
      let instances = live.get(key);
      if (!instances) live.set(key, (instances = new Set()));
      instances.add(record.instance);
    };
    for (const r of deps.view.agents()) add(`agent/${r.name}`, r);
    const servers = new Set<string>();
    for (const r of deps.view.mcpServers()) {
      add(`mcp/${r.name}`, r);
      servers.add(r.name);
    }
    const before = { pools: deps.peers.size, ...deps.resilience.counts() };
    deps.peers.retain(pools);
    deps.resilience.retain(live);
    deps.mcp.retain(live);
    deps.federation.retain(servers);
    const after = deps.resilience.counts();
    const dropped = { pools: before.pools - deps.peers.size, breakers: before.breakers - after.breakers, targets: before.targets - after.targets };
    if (dropped.pools + dropped.breakers + dropped.targets > 0) {
      deps.onReaped?.(dropped);
      // A call that picked an instance just before it left may have re-created its state: look again.
      schedule();
    }
  }

  const unsubscribe = deps.view.onChange(schedule);
  return {
    reap,
    resources() {
      const handles: Record<string, number> = {};
      const active = process.getActiveResourcesInfo();
      for (const type of active) handles[type] = (handles[type] ?? 0) + 1;
      const { sessions, upstreams } = deps.federation.counts();
      return {
        pools: deps.peers.size,
        ...deps.resilience.counts(),
        mcpSessions: { outbound: deps.mcp.sessions(), federated: sessions, federatedUpstreams: upstreams, stdio: deps.localSessions() },
        activeHandles: { total: active.length, ...handles },
        memory: process.memoryUsage(),
      };
    },
    close() {
      unsubscribe();
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
