// The policy in force in one sidecar and the check the request path calls: decide the call in the
// request context, put the decision on ctx.decision, and refuse it with POLICY_DENIED (enforce) or record
// it and let it through (audit). Without a policy every call passes, as before policy existed.
import { MeshError } from '../../sdk/errors.ts';
import type { RequestContext } from '../request-context.ts';
import { describeCall, type CompiledPolicy, type PolicyCall, type PolicyDecision, type ResolvedLimit, type TargetKind } from './policy-engine.ts';
import type { PolicyMetrics } from './policy-metrics.ts';
import type { Registrations } from '../../registry/index.ts';

const NO_REGISTRATIONS: readonly Registrations[] = Object.freeze([]);

/** What check() decides on besides ctx: an MCP message's policy method, whole tool name and arguments. */
type CheckOptions = { method?: string | undefined; tool?: string | undefined; args?: unknown };
/** A shared default: a `= {}` default would build an object on every A2A call. */
const NO_OPTIONS: CheckOptions = Object.freeze({});

export interface PolicyStatus {
  /** null: no policy, every call allowed. */
  version: number | null;
  source: string;
  mode?: 'enforce' | 'audit';
  default?: 'allow' | 'deny';
  rules?: number;
  appliedAt?: string;
  loadedAt?: string;
  /** The last version that could not be used (the one before it stays in force). */
  lastError?: string;
}

export class PolicyGate {
  readonly #self: string;
  readonly #metrics: PolicyMetrics | undefined;
  #policy: CompiledPolicy | undefined;
  #status: PolicyStatus = { version: null, source: 'none' };
  readonly #listeners = new Set<() => void>();

  /** `self`: this sidecar's identity, the caller on the outbound side. */
  constructor(self: string, metrics?: PolicyMetrics) {
    this.#self = self;
    this.#metrics = metrics;
  }

  get policy(): CompiledPolicy | undefined {
    return this.#policy;
  }

  install(policy: CompiledPolicy, info: { source: string; appliedAt?: string }): void {
    this.#policy = policy;
    const { document } = policy;
    this.#status = {
      version: policy.version, source: info.source, mode: document.mode, default: document.default, rules: document.rules.length,
      ...(info.appliedAt ? { appliedAt: info.appliedAt } : {}), loadedAt: new Date().toISOString(),
    };
    this.#metrics?.version(policy.version);
    for (const listener of this.#listeners) listener();
  }

  /** A version that could not be used: counted and shown; the policy in force stays. */
  failed(message: string): void {
    this.#status = { ...this.#status, lastError: message };
    this.#metrics?.loadError();
  }

  status(): PolicyStatus {
    return this.#status;
  }

  /** Called after each new policy (e.g. to tell MCP clients their tool list changed). */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }

  /** Decides the call in `ctx` (target, method and tool already read); throws POLICY_DENIED when enforced. */
  check(ctx: RequestContext, options: CheckOptions = NO_OPTIONS): void {
    const policy = this.#policy;
    const target = ctx.target;
    if (!policy || !target) return;
    const caller = ctx.caller ?? this.#self;
    const method = options.method ?? ctx.method;
    const tool = options.tool ?? ctx.tool;
    // Usually the cached decision for (caller, target, method, tool) settles it and no PolicyCall is built;
    // decide() gets the whole call when a rule that applies reads the end user, the chain or the arguments.
    const decision = policy.settled(caller, target, method, tool)
      ?? policy.decide({ caller, target, method, tool, user: ctx.user, via: ctx.chain, args: options.args });
    ctx.decision = decision;
    if (decision.allowed) {
      this.#metrics?.decision(ctx.direction, 'allow');
      return;
    }
    if (decision.mode === 'audit') {
      this.#metrics?.decision(ctx.direction, 'audit_deny');
      ctx.log.warn({ policy: auditFields(decision), ...ctx.describe() }, 'policy audit: the call would be denied');
      return;
    }
    this.#metrics?.decision(ctx.direction, 'deny');
    throw deniedError({ caller, target, method, tool }, decision);
  }

  /**
   * Names `identity` may announce besides agent/{its own name}, from the policy's `registrations`, as
   * the registry's name binding takes grants (createRecordVerifier's `registrations`); [] without any.
   */
  registrationsFor(identity: string): readonly Registrations[] {
    const mine = this.#policy?.registrationsOf(identity);
    return mine ? [mine] : NO_REGISTRATIONS;
  }

  /**
   * The policy's `limits` for a call (none without a policy), for the rate and concurrency limiters:
   * e.g. `createMeshUsers(config, identity, { limitsFor: (c, t, u) => gate.limitsFor(c, t, u).filter(hasRate) })`.
   */
  limitsFor(caller: string, target: { kind: TargetKind; name: string }, user?: unknown): readonly ResolvedLimit[] {
    return this.#policy?.limitsFor(caller, target, user) ?? [];
  }

  /** The policy's `push.allow` (undefined without a policy: the config's then). */
  pushAllow(): readonly string[] | undefined {
    return this.#policy?.document.push.allow;
  }

  /** Whether this sidecar's agent may call anything on the target (discovery filters). */
  mayReach(kind: TargetKind, name: string): boolean {
    return this.#policy?.mayReach(this.#self, kind, name) ?? true;
  }

  /**
   * Whether this sidecar's agent may call `tool` of `server` (the federated tools/list, /registry/mcp);
   * `who`: the verified end user and chain it acts for, when known.
   */
  mayCallTool(server: string, tool: string, who?: { user?: unknown; via?: unknown }): boolean {
    return this.#policy?.mayCallTool(this.#self, server, tool, who) ?? true;
  }
}

/** The POLICY_DENIED error for a call: the request, the caller, and the rule or that none allowed it. */
export function deniedError(call: PolicyCall, decision: PolicyDecision): MeshError {
  return new MeshError('POLICY_DENIED', `policy denies ${describeCall(call)} to ${call.caller}: ${decision.reason}`, {
    details: {
      method: call.method, target: `${call.target.kind}/${call.target.name}`,
      ...(call.tool === undefined ? {} : { tool: call.tool }),
      ...(decision.rule === undefined ? {} : { rule: decision.rule }),
      policyVersion: decision.version,
    },
  });
}

function auditFields(decision: PolicyDecision): Record<string, unknown> {
  return { version: decision.version, rule: decision.rule, reason: decision.reason, mode: decision.mode };
}

/** What the policy reads of an MCP message: its method (see below), the whole tool name (ctx.tool is cut for logs), the arguments. */
export function mcpPolicyFacts(ctx: RequestContext, body: Buffer | undefined, message: { params?: { name?: unknown; arguments?: unknown } } | undefined) {
  const name = message?.params?.name;
  return { method: mcpPolicyMethod(ctx, body, message), tool: typeof name === 'string' && ctx.tool !== undefined ? name : undefined, args: message?.params?.arguments };
}

/**
 * The MCP method the policy decides for a POSTed body: what readMcpRequest read, or `batch` for a JSON
 * array (several messages: only a rule without method or tool limits allows it) and `other` for a body
 * it could not read. `message` is readMcpRequest's result.
 */
export function mcpPolicyMethod(ctx: RequestContext, body: Buffer | undefined, message: unknown): string | undefined {
  if (!body || message !== undefined) return undefined;
  for (const byte of body) {
    if (byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09) continue;
    return byte === 0x5b ? 'batch' : 'other';
  }
  return ctx.method;
}
