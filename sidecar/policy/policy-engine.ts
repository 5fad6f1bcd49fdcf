// The compiled policy: decides one call (caller, end user, chain, target, method, tool, arguments) by the
// rules (deny rules first, then allow rules, then `default`), and answers discovery questions. The rules
// that can apply to (caller, target, method, tool) are found once and cached until the policy changes.
import { compileGlob, compileGlobs } from './glob.ts';
import { argumentFailure, type CompiledArgument } from './policy-arguments.ts';
import type { PolicyDocument, PolicyFrom, PolicyRule } from './policy-schema.ts';

export type TargetKind = 'agent' | 'mcp';

/** One call as the policy sees it. user, via and args are read only when a rule asks for them. */
export interface PolicyCall {
  /** The caller's SPIFFE ID (the local agent's identity on the calling side). */
  caller: string;
  target: { kind: TargetKind; name: string };
  /** A2A v1.0 name, `agent-card`, or the MCP method (`tools/call`, `MCP GET`, `batch` …). */
  method: string;
  tool?: string | undefined;
  /** The verified end user: { subject, claims }. */
  user?: unknown;
  /** The agent identities the call passed through (the delegation chain). */
  via?: unknown;
  /** tools/call arguments. */
  args?: unknown;
}

export interface PolicyDecision {
  readonly allowed: boolean;
  /** The rule that decided; undefined when `default` did. */
  readonly rule: string | undefined;
  readonly reason: string;
  readonly mode: 'enforce' | 'audit';
  readonly version: number;
}

type Matcher = (value: string) => boolean;

/** One entry of the policy's `limits` that applies to a call; `name` defaults to `limits[i]`. */
export interface ResolvedLimit {
  readonly name: string;
  readonly rate?: { tokens: number; perMs: number } | undefined;
  readonly burst?: number | undefined;
  readonly concurrency?: number | undefined;
}

interface CompiledLimit {
  readonly limit: ResolvedLimit;
  readonly identity: Matcher | undefined;
  readonly subject: Matcher | undefined;
  readonly claims: readonly (readonly [string, readonly string[]])[] | undefined;
  readonly kind: TargetKind;
  readonly target: Matcher;
}

interface CompiledRule {
  readonly name: string;
  readonly action: 'allow' | 'deny';
  readonly identity: Matcher | undefined;
  readonly subject: Matcher | undefined;
  readonly claims: readonly (readonly [string, readonly string[]])[] | undefined;
  readonly via: readonly Matcher[] | undefined;
  readonly kind: TargetKind;
  readonly target: Matcher;
  readonly methods: ReadonlySet<string> | undefined;
  readonly tools: Matcher | undefined;
  readonly args: readonly (readonly [string, CompiledArgument])[] | undefined;
  /** The rule names methods or tools (so it does not cover session plumbing when it denies). */
  readonly restricted: boolean;
  /** The rule depends on more than (caller, target, method, tool): user, chain or arguments. */
  readonly conditional: boolean;
}


/** The rules that can apply to one (caller, target, method, tool), or the decision when nothing else matters. */
type Plan = { fixed: PolicyDecision } | { fixed: undefined; denies: readonly CompiledRule[]; allows: readonly CompiledRule[] };
/**
 * Plans by caller → target name → method → tool (one tree per target kind). Nested maps rather than one
 * map keyed by a joined string: a cached lookup then builds no key string per call, and no two calls can
 * share a key (a tool '' is not "no tool").
 */
type PlanTree = Map<string, Map<string, Map<string, Map<string | undefined, Plan>>>>;

/** MCP messages that keep a session alive; any allow rule for the server covers them. */
const MCP_PLUMBING = new Set(['initialize', 'ping', 'MCP GET', 'MCP DELETE', 'MCP POST']);
const MAX_PLANS = 10_000;
const NO_LIMITS: readonly ResolvedLimit[] = Object.freeze([]);

export class CompiledPolicy {
  readonly document: PolicyDocument;
  readonly version: number;
  readonly mode: 'enforce' | 'audit';
  readonly #rules: readonly CompiledRule[];
  readonly #plans: Record<TargetKind, PlanTree> = { agent: new Map(), mcp: new Map() };
  /** Plans in both trees, bounded by MAX_PLANS. */
  #planCount = 0;
  readonly #byDefault: PolicyDecision;
  readonly #limits: readonly CompiledLimit[];
  /** Limits per (caller, target) when none depends on the end user. */
  readonly #limitPlans = new Map<string, readonly ResolvedLimit[]>();
  /** `registrations` merged per identity. */
  readonly #registrations = new Map<string, { agents: string[]; mcp: string[] }>();

  constructor(document: PolicyDocument, version: number) {
    this.document = document;
    this.version = version;
    this.mode = document.mode;
    this.#rules = document.rules.map(compileRule);
    for (const r of document.registrations) {
      const mine = this.#registrations.get(r.identity) ?? { agents: [], mcp: [] };
      mine.agents = [...new Set([...mine.agents, ...r.agents])];
      mine.mcp = [...new Set([...mine.mcp, ...r.mcp])];
      this.#registrations.set(r.identity, mine);
    }
    this.#limits = document.limits.map((l, i) => {
      const from = compileFrom(l.from);
      return {
        limit: Object.freeze({ name: l.name ?? `limits[${i}]`, rate: l.rate, burst: l.burst, concurrency: l.concurrency }),
        identity: from.identity, subject: from.subject, claims: from.claims,
        kind: l.to.agent !== undefined ? 'agent' : 'mcp', target: compileGlob(l.to.agent ?? l.to.mcp ?? ''),
      };
    });
    this.#byDefault = Object.freeze({
      allowed: document.default === 'allow', rule: undefined, mode: this.mode, version,
      reason: document.default === 'allow' ? 'no rule decides it; the policy allows by default' : 'no rule allows it (default: deny)',
    });
  }

  /**
   * The decision when caller, target, method and tool settle it (no rule that applies looks at the end
   * user, chain or arguments), without building a PolicyCall; undefined when they do not: then decide().
   */
  settled(caller: string, target: { kind: TargetKind; name: string }, method: string, tool: string | undefined): PolicyDecision | undefined {
    return this.#plan(caller, target.kind, target.name, method, tool).fixed;
  }

  /** The decision for one call. Cheap when cached: a few map lookups, and per-call checks only for conditional rules. */
  decide(call: PolicyCall): PolicyDecision {
    const plan = this.#plan(call.caller, call.target.kind, call.target.name, call.method, call.tool);
    if (plan.fixed) return plan.fixed;
    for (const rule of plan.denies) if (conditionsHold(rule, call)) return this.#decision(false, rule, `rule '${rule.name}' denies it`);
    // Opening or keeping a session (MCP initialize, ping, GET, DELETE; an agent's card) comes with an allow
    // rule whatever its user and via conditions: those decide the calls made in the session.
    const session = isPlumbing(call.target.kind, call.method);
    let nearMiss: { why: string; rule: CompiledRule } | undefined;
    for (const rule of plan.allows) {
      if (!session && !conditionsHold(rule, call)) continue;
      const failed = rule.args && argumentFailure(rule.args, call.args);
      if (!failed) return this.#decision(true, rule, `allowed by rule '${rule.name}'`);
      nearMiss ??= { why: `${failed} (rule '${rule.name}')`, rule };
    }
    // Refused only by an argument constraint: the decision names that rule (as the error does).
    if (nearMiss && !this.#byDefault.allowed) return this.#decision(false, nearMiss.rule, `no rule allows it: ${nearMiss.why}`);
    return this.#byDefault;
  }

  /** Whether `caller` could call anything on the target (for discovery; user, chain and arguments are assumed to fit). */
  mayReach(caller: string, kind: TargetKind, name: string): boolean {
    if (this.mode === 'audit') return true;
    const applies = (r: CompiledRule) => r.kind === kind && r.target(name) && (!r.identity || r.identity(caller));
    if (this.#rules.some((r) => r.action === 'deny' && !r.restricted && !r.conditional && applies(r))) return false;
    return this.#rules.some((r) => r.action === 'allow' && applies(r)) || this.#byDefault.allowed;
  }

  /**
   * Whether `caller` could call `tool` of MCP server `server` (for tools/list). Without `who`, the same
   * assumptions as mayReach; with it (the verified end user and chain of the listing), rules on the user
   * and `via` are decided for them, and only argument constraints are assumed to fit.
   */
  mayCallTool(caller: string, server: string, tool: string, who?: { user?: unknown; via?: unknown }): boolean {
    if (this.mode === 'audit') return true;
    const plan = this.#plan(caller, 'mcp', server, 'tools/call', tool);
    if (plan.fixed) return plan.fixed.allowed;
    if (who) {
      const call: PolicyCall = { caller, target: { kind: 'mcp', name: server }, method: 'tools/call', tool, user: who.user, via: who.via };
      if (plan.denies.some((r) => conditionsHold(r, call))) return false;
      return plan.allows.some((r) => conditionsHold(r, call)) || this.#byDefault.allowed;
    }
    if (plan.denies.some((r) => !r.conditional)) return false;
    return plan.allows.length > 0 || this.#byDefault.allowed;
  }

  /** Names `identity` may announce besides agent/{its own name} (for the registry's name binding). */
  registrationsFor(identity: string): { agents: string[]; mcp: string[] } {
    const mine = this.#registrations.get(identity);
    return mine ? { agents: [...mine.agents], mcp: [...mine.mcp] } : { agents: [], mcp: [] };
  }

  /** Like registrationsFor, without copying (read per registry record verified). */
  registrationsOf(identity: string): { readonly agents: readonly string[]; readonly mcp: readonly string[] } | undefined {
    return this.#registrations.get(identity);
  }

  /**
   * The `limits` that apply to a caller (and end user) calling a target, in document order: the shape
   * the rate limiter takes (users/rate-limiter.ts LimitsFor, after keeping those with a rate). Cached per
   * (caller, target) unless a limit names the end user.
   */
  limitsFor(caller: string, target: { kind: TargetKind; name: string }, user?: unknown): readonly ResolvedLimit[] {
    if (this.#limits.length === 0) return NO_LIMITS;
    const applies = (l: CompiledLimit) => l.kind === target.kind && l.target(target.name) && (!l.identity || l.identity(caller));
    if (this.#limits.some((l) => l.subject || l.claims)) {
      return this.#limits.filter((l) => applies(l) && (!(l.subject || l.claims) || userMatches(l, user))).map((l) => l.limit);
    }
    const key = `${caller}\n${target.kind}\n${target.name}`;
    let found = this.#limitPlans.get(key);
    if (!found) {
      found = Object.freeze(this.#limits.filter(applies).map((l) => l.limit));
      if (this.#limitPlans.size >= MAX_PLANS) this.#limitPlans.clear();
      this.#limitPlans.set(key, found);
    }
    return found;
  }

  #decision(allowed: boolean, rule: CompiledRule | undefined, reason: string): PolicyDecision {
    return { allowed, rule: rule?.name, reason, mode: this.mode, version: this.version };
  }

  #plan(caller: string, kind: TargetKind, name: string, method: string, tool: string | undefined): Plan {
    let plan = this.#plans[kind].get(caller)?.get(name)?.get(method)?.get(tool);
    if (plan) return plan;
    const matching = this.#rules.filter((r) => (!r.identity || r.identity(caller)) && targets(r, kind, name, method, tool));
    const denies = matching.filter((r) => r.action === 'deny');
    const allows = matching.filter((r) => r.action === 'allow');
    if (matching.some((r) => r.conditional)) plan = { fixed: undefined, denies, allows };
    else {
      const decider = denies[0] ?? allows[0];
      plan = {
        fixed: decider
          ? Object.freeze(this.#decision(decider.action === 'allow', decider, decider.action === 'allow' ? `allowed by rule '${decider.name}'` : `rule '${decider.name}' denies it`))
          : this.#byDefault,
      };
    }
    this.#cachePlan(caller, kind, name, method, tool, plan);
    return plan;
  }

  #cachePlan(caller: string, kind: TargetKind, name: string, method: string, tool: string | undefined, plan: Plan): void {
    if (this.#planCount >= MAX_PLANS) {
      this.#plans.agent.clear();
      this.#plans.mcp.clear();
      this.#planCount = 0;
    }
    const byCaller = this.#plans[kind];
    let byName = byCaller.get(caller);
    if (!byName) byCaller.set(caller, byName = new Map());
    let byMethod = byName.get(name);
    if (!byMethod) byName.set(name, byMethod = new Map());
    let byTool = byMethod.get(method);
    if (!byTool) byMethod.set(method, byTool = new Map());
    byTool.set(tool, plan);
    this.#planCount++;
  }
}

/** Words for a call in messages: `SendMessage on agent 'researcher'`, `tools/call of tool 'x' on MCP server 'stats'`. */
export function describeCall(call: Pick<PolicyCall, 'target' | 'method' | 'tool'>): string {
  const tool = call.tool === undefined ? '' : ` of tool '${call.tool}'`;
  return `${call.method}${tool} on ${call.target.kind === 'agent' ? 'agent' : 'MCP server'} '${call.target.name}'`;
}

function compileFrom(from: Omit<PolicyFrom, 'via'> & { via?: string[] | undefined }) {
  return {
    identity: from.identity ? compileGlobs(from.identity) : undefined,
    subject: from.user?.subject ? compileGlobs(from.user.subject) : undefined,
    claims: from.user?.claims ? Object.entries(from.user.claims) : undefined,
    via: from.via?.map(compileGlob),
  };
}

function compileRule(rule: PolicyRule): CompiledRule {
  const from = compileFrom(rule.from);
  const { to } = rule;
  const args = to.arguments ? Object.entries(to.arguments).map(([name, c]) => [name, {
    ...c, pattern: c.pattern === undefined ? undefined : new RegExp(`^(?:${c.pattern})$`, 'u'),
  }] as const) : undefined;
  return {
    name: rule.name, action: rule.action, ...from,
    kind: to.agent !== undefined ? 'agent' : 'mcp',
    target: compileGlob(to.agent ?? to.mcp ?? ''),
    methods: to.methods ? new Set(to.methods) : undefined,
    tools: to.tools ? compileGlobs(to.tools) : undefined,
    args,
    restricted: to.methods !== undefined || to.tools !== undefined,
    conditional: from.subject !== undefined || from.claims !== undefined || from.via !== undefined || args !== undefined,
  };
}

/** Whether the rule's `to` covers this target, method and tool. */
function targets(rule: CompiledRule, kind: TargetKind, name: string, method: string, tool: string | undefined): boolean {
  if (rule.kind !== kind || !rule.target(name)) return false;
  // Reading an agent's card or keeping an MCP session going comes with any allow rule for the target;
  // a deny rule covers them only when it names no methods or tools.
  if (isPlumbing(kind, method)) return rule.action === 'allow' || !rule.restricted;
  if (kind === 'agent') return !rule.methods || rule.methods.has(method);
  if (method === 'tools/call') {
    if (rule.methods && !rule.methods.has('tools/call')) return false;
    return !rule.tools || (tool !== undefined && rule.tools(tool));
  }
  if (rule.methods) return rule.methods.has(method);
  return rule.tools ? method === 'tools/list' : true;
}

/** Reading an agent's card, or opening and keeping an MCP session going (no tool, prompt or resource). */
function isPlumbing(kind: TargetKind, method: string): boolean {
  return kind === 'agent' ? method === 'agent-card' : MCP_PLUMBING.has(method) || method.startsWith('notifications/');
}

function conditionsHold(rule: CompiledRule, call: PolicyCall): boolean {
  if ((rule.subject || rule.claims) && !userMatches(rule, call.user)) return false;
  return !rule.via || viaMatches(rule.via, call.via, call.caller);
}

function userMatches(rule: { subject: Matcher | undefined; claims: readonly (readonly [string, readonly string[]])[] | undefined }, value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const user = value as { subject?: unknown; claims?: unknown };
  const claims = (typeof user.claims === 'object' && user.claims !== null ? user.claims : {}) as Record<string, unknown>;
  const subject = typeof user.subject === 'string' ? user.subject : typeof claims.sub === 'string' ? claims.sub : undefined;
  if (rule.subject && (subject === undefined || !rule.subject(subject))) return false;
  for (const [name, allowed] of rule.claims ?? []) {
    const v = claims[name];
    const values: unknown[] = Array.isArray(v) ? v : [v];
    if (!values.some((x) => (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') && allowed.includes(String(x)))) return false;
  }
  return true;
}

/** Each pattern matches an identity on the path (chain, then the immediate caller), in order. */
function viaMatches(patterns: readonly Matcher[], chain: unknown, caller: string): boolean {
  const path = Array.isArray(chain) ? chain.filter((x): x is string => typeof x === 'string') : [];
  if (path[path.length - 1] !== caller) path.push(caller);
  let at = 0;
  for (const pattern of patterns) {
    while (at < path.length && !pattern(path[at] ?? '')) at++;
    if (at === path.length) return false;
    at++;
  }
  return true;
}
