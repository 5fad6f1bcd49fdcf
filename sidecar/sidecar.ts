// Assembles one sidecar: identity, registry, the three listeners and the local agent's announcement,
// and tears them down in order (withdraw, stop accepting, drain, close). No process handling here.
import { randomUUID } from 'node:crypto';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { MeshError } from '../sdk/errors.ts';
import { createPinVerifier, createRecordSigner, createRecordVerifier, natsAccessWarning, signFirstUse, openKeyValueStore, openRegistry, openToolPinStore, type Announcement, type Registry } from '../registry/index.ts';
import { adminHandler } from './http/admin.ts';
import { targetBreaker, targetRetry, targetTimeout, type SidecarConfig } from './config.ts';
import { assertOwnsAgentName, loadGrants, openIdentity, serverTlsOptions, type LoadedGrants } from './identity/index.ts';
import { watchRegistryRejections } from './registry-rejections.ts';
import { inboundHandler } from './http/inbound.ts';
import { listen, type Listener } from './http/listener.ts';
import { listenFailed } from './http/listen-error.ts';
import { loadLocalAgent, type LoadedAgent } from './a2a/local-agent.ts';
import { bridgeDiagnostics, type Logger } from './log.ts';
import { FailureLog } from './log-once.ts';
import { watchAgentHealth, type AgentHealth } from './a2a/agent-health.ts';
import { outboundHandler } from './http/outbound.ts';
import { guardOutbound } from './http/outbound-guard.ts';
import { neverForward } from './http/credential-headers.ts';
import { PeerPools } from './transport/peers.ts';
import { followRotation, redactConfig } from './rotation.ts';
import { ListenStreams } from './http/listen-streams.ts';
import { createMetrics } from './metrics.ts';
import { MessageDedup } from './a2a/dedup.ts';
import { MESH_DEDUP_TTL_MS, MeshDedup } from './a2a/mesh-dedup.ts';
import { createResilienceState } from './resilience/state.ts';
import { AFFINITY_TTL_MS, TaskAffinity } from './a2a/task-affinity.ts';
import { createFederation } from './mcp/federation.ts';
import { startLocalMcpServers, type LocalMcpServers } from './mcp/local-servers.ts';
import { outboundMcp } from './mcp/outbound-mcp.ts';
import { natsAccess } from './nats/access.ts';
import { SessionOwners } from './mcp/session-owners.ts';
import { startReaper } from './reaper.ts';
import { Admission } from './overload/admission.ts';
import { registerOverloadMetrics } from './overload/overload-metrics.ts';
import { PendingLimit } from './overload/pending-limit.ts';
import { startAudit } from './audit/start-audit.ts';
import { ToolGuard } from './tools/tool-guard.ts';
import { pinRejections } from './tools/pin-rejections.ts';
import { createMeshUsers } from './users/create-mesh-users.ts';
import { RecentCalls, withRecentCalls } from './dashboard/recent-calls.ts';
import { dashboardRoutes } from './dashboard/dashboard-routes.ts';
import { PolicyGate } from './policy/policy-gate.ts';
import { createPolicyMetrics } from './policy/policy-metrics.ts';
import { startPolicySource, type PolicySource } from './policy/policy-source.ts';
import { policyUsersSource } from './policy/policy-limits.ts';
import { followRegistrations } from './policy/follow-registrations.ts';
import { startObserving } from './observe/observing.ts';

export interface SidecarAddresses {
  outbound: string;
  inbound: string;
  admin: string;
}

export interface Sidecar extends AsyncDisposable {
  readonly addresses: SidecarAddresses;
  readonly identity: string;
  readonly instance: string;
  /** The local agent's registry name, when it fronts one. */
  readonly agentName: string | undefined;
  /** Graceful: withdraw from the registry, stop accepting, drain in-flight calls, close. Idempotent. */
  close(): Promise<void>;
  /** Resolves when the sidecar has fully stopped; never rejects. */
  readonly closed: Promise<void>;
}

/** The default directory the embedded registry shares between processes of one user on this host. */
export function defaultRegistryDir(): string {
  return join(tmpdir(), `agentmesh-registry-${userInfo().uid}`);
}

export interface StartSidecarOptions {
  /** Called once the listeners are up, before the local agent's card is awaited (`agentmesh run` starts the agent here). */
  onListening?: (addresses: SidecarAddresses) => void;
  /** Aborted during start-up: stop waiting for the local agent and fail start-up (the agent exited first). */
  startup?: AbortSignal;
}

export async function startSidecar(config: SidecarConfig, log: Logger, options: StartSidecarOptions = {}): Promise<Sidecar> {
  const instance = config.instance ?? randomUUID().replaceAll('-', '').slice(0, 16);
  const shutdown = new AbortController();
  const identities = await openIdentity(config.identity, log);
  // The SPIFFE ID and trust domain never change; the certificate behind them does (rotation.ts).
  const identity = identities.current();
  let grants: LoadedGrants;
  try {
    grants = await loadGrants(config.identity.grants, identity);
  } catch (err) {
    identities.close();
    throw err;
  }
  const recentCalls = new RecentCalls();
  const metrics = withRecentCalls(createMetrics(), recentCalls);
  const policy = new PolicyGate(identity.id, createPolicyMetrics(metrics.registry));
  // auth.jwt and the signer first: a bad JWKS file fails start-up before anything is opened.
  // Rate limits and push.allow: the config's, and the policy document's when one is in force.
  const users = await createMeshUsers(config, () => identities.current(), policyUsersSource(policy, config)).catch((err: unknown) => { identities.close(); throw err; });
  const stopRejections = watchRegistryRejections(metrics, log);
  // Records are signed with the current workload key (renewed certificates take effect at the next
  // heartbeat) and verified against the current bundle, names bound by grants and the policy's registrations.
  const currentIdentity = () => identities.current();
  const nats = config.registry.nats ? { nats: config.registry.nats, natsAccess: natsAccess(config, () => identities.current()) } : undefined;
  const natsWarning = nats && natsAccessWarning(nats.nats, nats.natsAccess);
  if (natsWarning) log.warn({ registry: 'nats' }, natsWarning);
  const offDiagnostics = bridgeDiagnostics(log, { connection: `agentmesh-sidecar-${instance}`, instance });
  const registry: Registry = await openRegistry({
    signer: createRecordSigner(currentIdentity),
    verifier: createRecordVerifier({ trustDomain: identity.trustDomain, bundle: () => currentIdentity().bundlePem, registrations: (id) => policy.registrationsFor(id) }),
    ttlMs: config.registry.ttl,
    bucket: config.registry.bucket,
    name: `agentmesh-sidecar-${instance}`,
    ...(nats ?? { dir: config.registry.dir ?? defaultRegistryDir() }),
  }).catch((err: unknown) => { offDiagnostics(); stopRejections(); identities.close(); users.close(); throw err; });
  const peers = new PeerPools(identities);
  const listeners: Listener[] = [];
  let selfUrl = '';
  const sessionIdleTimeoutMs = config.mcp.sessionIdleTimeout;
  const listenStreams = new ListenStreams();
  const federation = createFederation({ view: registry, outboundUrl: () => selfUrl, sessionIdleTimeoutMs, log, policy });
  const observing = await startObserving(config, log, { instance, identity: identity.id });
  const { observer, tap } = observing;
  const resilience = createResilienceState({
    retry: (name) => targetRetry(config, name),
    breaker: (name) => targetBreaker(config, name),
  }, {
    onRetry: (target, reason) => metrics.retry(target, reason),
    onBreaker: (target, event) => {
      metrics.breaker(target, event.instance, event.type);
      log[event.type === 'open' ? 'warn' : 'info']({ target, instance: event.instance }, `circuit ${event.type}`);
    },
    onForget: (target, instance) => metrics.forgetInstance(target, instance),
  });
  const affinity = new TaskAffinity(
    await openKeyValueStore({
      bucket: `${config.registry.bucket}-tasks`, ttlMs: AFFINITY_TTL_MS, name: `agentmesh-sidecar-${instance}-tasks`,
      ...(nats ? { nats: nats.nats, access: nats.natsAccess } : { dir: config.registry.dir ?? defaultRegistryDir() }),
    }).catch((err: unknown) => { log.warn({ err }, 'task affinity will not survive a restart: cannot open its store'); return undefined; }),
    ...affinityLog(log),
  );
  // Audit and tool integrity (audit/, tools/): started before the listeners, closed after them.
  const pinRejected = pinRejections(metrics, log);
  const opened = await Promise.allSettled([
    startAudit({ config, instance, identity: identity.id, registryDir: defaultRegistryDir(), nats, log }),
    openToolPinStore({
      bucket: config.registry.bucket, name: `agentmesh-sidecar-${instance}-tools`,
      verifier: createPinVerifier({ trustDomain: identity.trustDomain, bundle: () => currentIdentity().bundlePem }), onRejected: pinRejected,
      ...(nats ? { nats: nats.nats, access: nats.natsAccess } : { dir: config.registry.dir ?? defaultRegistryDir() }),
    }),
  ]);
  if (opened[0].status === 'rejected' || opened[1].status === 'rejected') {
    offDiagnostics();
    await Promise.allSettled([registry.close(), affinity.close(), observing.close(), ...opened.map((o) => (o.status === 'fulfilled' ? o.value?.close() : undefined))]);
    identities.close();
    users.close();
    stopRejections();
    throw opened[0].status === 'rejected' ? opened[0].reason : (opened[1] as PromiseRejectedResult).reason;
  }
  const audit = opened[0].value;
  const toolPins = opened[1].value;
  const tools = new ToolGuard({ store: toolPins, view: registry, pinning: config.tools.pinning, policyPinning: () => policy.policy?.document.tools, flagged: config.tools.flagged,
    sign: (pin) => signFirstUse(currentIdentity(), pin), rejected: pinRejected, audit, log });
  const closeIntegrity = async () => {
    tools.close();
    await toolPins.close().catch(() => undefined);
    await audit?.close().catch(() => undefined);
  };
  const hops = { maxHops: config.limits.maxHops, timeout: (target: string) => targetTimeout(config, target) };
  const dropHeaders = neverForward(config.hop.dropHeaders);
  const mcp = outboundMcp({
    resilience, hops, view: registry, peers, federation, listenStreams, maxBody: config.limits.maxBody, maxJsonDepth: config.limits.maxJsonDepth, maxSseEvent: config.limits.maxSseEvent, dropHeaders,
    sessionIdleTimeoutMs, tools, users, policy,
  });
  let localMcp: LocalMcpServers | undefined;
  const reaper = startReaper({
    view: registry, peers, resilience, mcp, federation, localSessions: () => localMcp?.sessions() ?? 0,
    onReaped: (dropped) => log.debug(dropped, 'dropped the state of instances that left the registry'),
  });
  let agent: LoadedAgent | undefined;
  let announcement: Announcement | undefined;
  let health: AgentHealth | undefined;
  let admission: Admission | undefined;
  /** One admission per local MCP server, made on its first inbound request. */
  const mcpAdmissions = new Map<string, Admission>();
  const admissionSettings = (name: string, kind: 'agent' | 'mcp') => ({
    agent: name, kind, concurrency: config.limits.concurrency, queue: config.limits.queue,
    streams: config.limits.streams, streamsPerCaller: config.limits.streamsPerCaller,
    callers: (caller: string) => config.limits.callers[caller], maxQueueWaitMs: config.resilience.defaults.timeout,
  });
  const mcpAdmission = (name: string): Admission | undefined => {
    if (!localMcp?.get(name)) return undefined;
    let a = mcpAdmissions.get(name);
    if (!a) mcpAdmissions.set(name, a = new Admission(admissionSettings(name, 'mcp')));
    return a;
  };
  const pending = new PendingLimit(config.limits.pendingPerTarget);
  registerOverloadMetrics(metrics.registry, { pending, admission: () => (agent && admission ? { agent: agent.name, snapshot: admission.snapshot() } : undefined) });
  let policySource: PolicySource | undefined;
  let stopRegistrations: (() => void) | undefined;
  let meshDedup: MeshDedup | undefined;
  const onError = (err: unknown) => log.error({ err }, 'unhandled error in a request handler');
  try {
    // The policy is in force before the first call is accepted.
    policySource = await startPolicySource({
      file: config.policy.file, nats, dir: config.registry.dir ?? defaultRegistryDir(), bucket: config.registry.bucket,
      name: `agentmesh-sidecar-${instance}`, gate: policy, log,
    });
    // Its registrations bind names: values the registry refused before the policy was read are admitted
    // now, and every later version that changes them is applied to what the registry holds.
    stopRegistrations = followRegistrations(policy, registry);
    if ((policy.policy?.document.registrations.length ?? 0) > 0) await registry.rebind();
    if (config.agent?.name !== undefined) assertOwnsAgentName(config.agent.name, identity, grants, policy.registrationsFor(identity.id));
    // First pins are taken once the policy (which may say `tools: approve`) is in force.
    void tools.scan();
    const outbound = await listen({
      ...config.listen.outbound, onError,
      handler: guardOutbound(outboundHandler({
        resilience, affinity, metrics, observer, hops, view: registry, mcp, peers, pending, maxBody: config.limits.maxBody, maxJsonDepth: config.limits.maxJsonDepth, maxSseEvent: config.limits.maxSseEvent, dropHeaders, users, policy, log, audit,
      })),
    }).catch(listenFailed('listen.outbound', config.listen.outbound));
    listeners.push(outbound);
    const out = config.listen.outbound;
    selfUrl = 'path' in out ? outbound.url : `http://${loopbackHost(out.host)}:${outbound.port}`;
    if (config.resilience.meshDedup) {
      const store = await openKeyValueStore({
        bucket: `${config.registry.bucket}-dedup`, ttlMs: MESH_DEDUP_TTL_MS, name: `agentmesh-sidecar-${instance}-dedup`,
        ...(nats ? { nats: nats.nats, access: nats.natsAccess } : { dir: config.registry.dir ?? defaultRegistryDir() }),
      }).catch((err: unknown) => { throw new MeshError('REGISTRY_UNAVAILABLE', `resilience.meshDedup: cannot open the KV bucket ${config.registry.bucket}-dedup (${(err as Error).message})`, { cause: err }); });
      meshDedup = new MeshDedup(store, instance, (err) => log.warn({ err }, 'mesh-wide dedup record unavailable; the local dedup still applies'));
    }
    const inbound = await listen({
      ...config.listen.inbound, onError, tls: serverTlsOptions(identity),
      handler: inboundHandler({
        dedup: new MessageDedup(), meshDedup, metrics, observer, trustDomain: identity.trustDomain, localAgent: () => agent, mcp: (name) => localMcp?.get(name), sessions: new SessionOwners(), listenStreams, admission: () => admission, mcpAdmission, policy,
        maxBody: config.limits.maxBody, maxJsonDepth: config.limits.maxJsonDepth, maxSseEvent: config.limits.maxSseEvent, users, log, audit,
      }),
    }).catch(listenFailed('listen.inbound', config.listen.inbound));
    listeners.push(inbound);
    followRotation({ identities, inbound, metrics, log });
    const admin = await listen({
      ...config.listen.admin, onError, upgrade: (req, socket, head) => tap.upgrade(req, socket, head),
      handler: adminHandler({
        metrics, view: registry, dashboard: dashboardRoutes({ registry: metrics.registry, recent: recentCalls, self: () => agent?.name ?? identity.id }),
        notReady: () => [
          ...(registry.synced() ? [] : ['registry not synced']),
          ...(registry.connected() ? [] : [`registry (${registry.backend}) unreachable`]),
          ...(registry.failingWrites() === 0 ? [] : [`registry (${registry.backend}) writes failing: ${registry.failingWrites()} record(s) not refreshed; routing from the cache`]),
          ...agentNotReady(health?.down(), config.agent !== undefined && !announcement),
          ...identities.notReady(),
        ],
        state: () => ({
          instance, identity: identity.id, agent: agent?.name, registry: registry.backend, breakers: resilience.snapshot(), resources: reaper.resources(),
          overload: { admission: admission?.snapshot(), mcp: Object.fromEntries([...mcpAdmissions].map(([name, a]) => [name, a.snapshot()])), pending: pending.snapshot() }, policy: policy.status(), tap: { clients: tap.clients, dropped: tap.dropped }, tracing: observing.tracing(), config: redactConfig(config),
        }),
      }),
    }).catch(listenFailed('listen.admin', config.listen.admin));
    listeners.push(admin);
    const endpoint = `https://${advertiseHost(config)}:${inbound.port}`;
    options.onListening?.({ outbound: outbound.url, inbound: inbound.url, admin: admin.url });
    localMcp = await startLocalMcpServers({ servers: config.mcp.servers, registry, record: { instance, identity: identity.id, endpoint, ...withGrants(grants.tokens) }, sessionIdleTimeoutMs, log });
    if (config.agent) {
      agent = await loadLocalAgent({
        url: config.agent.url, timeoutMs: config.agent.startupTimeout, signal: options.startup ? AbortSignal.any([shutdown.signal, options.startup]) : shutdown.signal,
        ...(config.agent.name ? { name: config.agent.name } : {}),
      });
      assertOwnsAgentName(agent.name, identity, grants, policy.registrationsFor(identity.id)); // the name may come from the card
      admission = new Admission(admissionSettings(agent.name, 'agent'));
      announcement = await registry.announce({
        kind: 'agent', name: agent.name, instance, identity: identity.id, endpoint, ...withGrants(grants.tokens),
        labels: { ...config.agent.labels }, card: agent.card,
      });
      log.info({ agent: agent.name, identity: identity.id, endpoint }, 'registered local agent');
      const loaded = agent;
      const record = { kind: 'agent', name: loaded.name, instance, identity: identity.id, endpoint, ...withGrants(grants.tokens), labels: { ...config.agent.labels } } as const;
      if (config.agent.healthInterval > 0) {
        health = watchAgentHealth({
          name: loaded.name, readCard: loaded.readCard, log,
          intervalMs: config.agent.healthInterval, timeoutMs: config.agent.healthTimeout, threshold: config.agent.healthThreshold,
          onDown: async () => { const a = announcement; announcement = undefined; await a?.withdraw(); },
          onUp: async (card, signal) => {
            loaded.useCard(card);
            announcement = await registry.announce({ ...record, card }, { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) });
          },
          onCard: async (card) => { loaded.useCard(card); await announcement?.update({ card }); },
        }, loaded.card);
      }
    }
    const addresses = { outbound: outbound.url, inbound: inbound.url, admin: admin.url };
    log.info({ ...addresses, registry: registry.backend, instance }, 'sidecar ready');
    let closing: Promise<void> | undefined;
    let resolveClosed: () => void = () => undefined;
    const closed = new Promise<void>((resolve) => { resolveClosed = resolve; });
    const close = () => (closing ??= (async () => {
      try {
        await health?.close();
        await announcement?.withdraw().catch((err: unknown) => log.warn({ err }, 'could not withdraw registration'));
        await localMcp?.withdraw();
        listenStreams.endAll();
        tap.close();
        await Promise.allSettled(listeners.map((l) => l.close(config.shutdown.drainTimeout)));
      } finally {
        shutdown.abort();
        stopRegistrations?.();
        reaper.close();
        mcp.close();
        admission?.close();
        for (const a of mcpAdmissions.values()) a.close();
        resilience.close();
        await affinity.close().catch(() => undefined);
        await Promise.allSettled([federation.close(), localMcp?.close(), closeIntegrity(), policySource?.close(), meshDedup?.close()]);
        await Promise.allSettled([registry.close(), peers.close(), agent?.close(), observing.close()]);
        identities.close();
        users.close();
        stopRejections();
        log.info('sidecar stopped');
        offDiagnostics();
        resolveClosed();
      }
    })());
    return {
      addresses, identity: identity.id, instance, agentName: agent?.name, close, closed,
      [Symbol.asyncDispose]: close,
    };
  } catch (err) {
    shutdown.abort();
    stopRegistrations?.();
    reaper.close();
    mcp.close();
    offDiagnostics();
    await observing.close();
    await health?.close();
    await Promise.allSettled([...listeners.map((l) => l.close()), federation.close(), localMcp?.close(), closeIntegrity(), policySource?.close()]);
    await Promise.allSettled([registry.close(), peers.close(), agent?.close(), affinity.close(), meshDedup?.close()]);
    identities.close();
    users.close();
    stopRejections();
    throw err;
  }
}

/** The /readyz reason about the local agent: why the health check counts it down, or that it is not registered. */
function agentNotReady(down: string | undefined, unregistered: boolean): string[] {
  if (down !== undefined) return [down];
  return unregistered ? ['local agent not registered'] : [];
}

/** The task-affinity store's failures, logged once per outage with a count instead of once per call. */
function affinityLog(log: Logger): [onError: (err: unknown) => void, onOk: () => void] {
  const failures = new FailureLog(log, { what: 'task affinity store' });
  return [(err) => failures.failure(err), () => failures.success()];
}

/** The grants field of a record: absent when there are none. */
function withGrants(tokens: readonly string[]): { grants?: string[] } {
  return tokens.length > 0 ? { grants: [...tokens] } : {};
}

/** A host this process can reach a listener on: 127.0.0.1 for the wildcard addresses. */
function loopbackHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

function advertiseHost(config: SidecarConfig): string {
  if (config.advertise) return config.advertise;
  const host = config.listen.inbound.host;
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
