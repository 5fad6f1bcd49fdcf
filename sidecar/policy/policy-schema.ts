// The mesh policy document (DESIGN.md "Policy, delegation and audit"): its zod schema and the parser that
// turns YAML/JSON text into a checked document, with errors naming the path. A2A methods are normalised
// to their v1.0 names through the method table; MCP methods must be ones the sidecar names.
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { MeshError } from '../../sdk/errors.ts';
import { NAME_PATTERN } from '../../registry/index.ts';
import { rpcMethod } from '../a2a/methods.ts';
import { KNOWN_METHODS } from '../mcp/outbound-mcp.ts';

const Glob = z.string().min(1).max(2048);
const Globs = z.union([Glob, z.array(Glob).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));
const ClaimValue = z.union([z.string(), z.number(), z.boolean()]).transform(String);
const ClaimValues = z.union([ClaimValue, z.array(ClaimValue).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));
const NameGlob = z.string().regex(/^[A-Za-z0-9_*?-]{1,64}$/, 'expected a name or a glob of [A-Za-z0-9_-*?]');
const ToolGlob = z.string().regex(/^[A-Za-z0-9_.*?-]{1,128}$/, 'expected a tool name or a glob of [A-Za-z0-9_.-*?]');

/** Who a rule or limit is about: workload identity globs, the end user, and the agents the call passed through. */
const FromSchema = z.strictObject({
  identity: Globs.optional(),
  user: z.strictObject({
    subject: Globs.optional(),
    /** Every claim named must hold one of the listed values (a list-valued claim: any of its elements). */
    claims: z.record(z.string().min(1), ClaimValues).optional(),
  }).optional(),
  /** Each pattern must match an agent identity the call passed through, in this order. */
  via: z.array(Glob).min(1).optional(),
});

/** A constraint on one argument of an MCP tools/call. */
const ArgumentSchema = z.strictObject({
  values: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1).optional(),
  /** A regular expression the whole string value must match. */
  pattern: z.string().min(1).max(1024).refine((p) => {
    try { new RegExp(p, 'u'); return true; } catch { return false; }
  }, 'expected a valid regular expression').optional(),
  min: z.number().optional(),
  max: z.number().optional(),
  maxLength: z.number().int().min(0).optional(),
  /** When true, a call without this argument is refused; otherwise an absent argument passes. */
  required: z.boolean().default(false),
}).refine((a) => a.values !== undefined || a.pattern !== undefined || a.min !== undefined || a.max !== undefined || a.maxLength !== undefined || a.required,
  'expected at least one of values, pattern, min, max, maxLength, required');

const MCP_METHODS = [...KNOWN_METHODS].filter((m) => !m.startsWith('notifications/'));

const ToSchema = z.strictObject({
  agent: NameGlob.optional(),
  mcp: NameGlob.optional(),
  /** A2A: v1.0 names (v0.3 aliases accepted); MCP: method names. `*` or absent: every method. */
  methods: z.array(z.string().min(1)).min(1).optional(),
  /** MCP only: tool names or globs (without methods: tools/list and tools/call of these tools). */
  tools: z.array(ToolGlob).min(1).optional(),
  /** MCP only: constraints on tools/call arguments, by argument name. */
  arguments: z.record(z.string().min(1).max(128), ArgumentSchema).optional(),
}).superRefine((to, ctx) => {
  if ((to.agent === undefined) === (to.mcp === undefined)) ctx.addIssue({ code: 'custom', message: 'expected exactly one of agent or mcp' });
  if (to.agent !== undefined) {
    for (const key of ['tools', 'arguments'] as const) {
      if (to[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `${key} apply to MCP servers only (use mcp: NAME)` });
    }
  }
  to.methods?.forEach((m, i) => {
    if (m === '*') return;
    if (to.agent !== undefined && !rpcMethod(m)) {
      ctx.addIssue({ code: 'custom', path: ['methods', i], message: `unknown A2A method '${m}' (expected a v1.0 name such as SendMessage or GetTask, or its v0.3 alias)` });
    }
    if (to.mcp !== undefined && !MCP_METHODS.includes(m)) {
      ctx.addIssue({ code: 'custom', path: ['methods', i], message: `unknown MCP method '${m}' (expected one of ${MCP_METHODS.join(', ')})` });
    }
  });
}).transform((to) => ({
  ...to,
  // v0.3 aliases become v1.0 names; a `*` anywhere means every method.
  methods: to.methods?.includes('*') ? undefined : to.methods?.map((m) => (to.agent !== undefined ? rpcMethod(m)?.method.name ?? m : m)),
}));

const RuleSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'expected a rule name of 1-128 characters from [A-Za-z0-9_.:-]'),
  /** allow (the default) or deny; deny rules are checked first. */
  action: z.enum(['allow', 'deny']).default('allow'),
  from: FromSchema.default({}),
  to: ToSchema,
}).superRefine((rule, ctx) => {
  if (rule.action === 'deny' && rule.to.arguments !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['to', 'arguments'], message: 'argument constraints narrow allow rules only' });
  }
});

/** `20/s`, `600/m`, `1000/h`: tokens per period. */
const Rate = z.string().transform((v, ctx) => {
  const m = /^(\d+(?:\.\d+)?)\/(s|m|h)$/.exec(v.trim());
  const per = m?.[2] === 's' ? 1000 : m?.[2] === 'm' ? 60_000 : m?.[2] === 'h' ? 3_600_000 : undefined;
  if (!m?.[1] || per === undefined || Number(m[1]) <= 0) {
    ctx.addIssue({ code: 'custom', message: `expected a rate like 20/s, 600/m or 1000/h, got ${JSON.stringify(v)}` });
    return { tokens: 0, perMs: 1000 };
  }
  return { tokens: Number(m[1]), perMs: per };
});

const LimitSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/).optional(),
  from: FromSchema.omit({ via: true }).default({}),
  to: z.strictObject({ agent: NameGlob.optional(), mcp: NameGlob.optional() })
    .refine((to) => (to.agent === undefined) !== (to.mcp === undefined), 'expected exactly one of agent or mcp'),
  rate: Rate.optional(),
  burst: z.number().int().min(1).optional(),
  concurrency: z.number().int().min(1).optional(),
}).refine((l) => l.rate !== undefined || l.concurrency !== undefined, 'expected rate and/or concurrency')
  .refine((l) => l.burst === undefined || l.rate !== undefined, { message: 'burst needs a rate', path: ['burst'] });

export const PolicyDocumentSchema = z.strictObject({
  mode: z.enum(['enforce', 'audit']).default('enforce'),
  /** What happens to a call no rule decides: deny unless said otherwise. */
  default: z.enum(['allow', 'deny']).default('deny'),
  registrations: z.array(z.strictObject({
    identity: z.string().startsWith('spiffe://', 'expected a SPIFFE ID'),
    agents: z.array(z.string().regex(NAME_PATTERN, 'expected an agent name')).default([]),
    mcp: z.array(z.string().regex(NAME_PATTERN, 'expected an MCP server name')).default([]),
  })).default([]),
  rules: z.array(RuleSchema).default([]).superRefine((rules, ctx) => {
    const seen = new Set<string>();
    rules.forEach((r, i) => {
      if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate rule name '${r.name}'` });
      seen.add(r.name);
    });
  }),
  limits: z.array(LimitSchema).default([]),
  /**
   * Tool pinning for every sidecar: approve (a tool is callable only after `agentmesh tools approve`) or
   * first-use (pinned when first seen). Absent: each sidecar's tools.pinning. approve in either wins.
   */
  tools: z.enum(['first-use', 'approve']).optional(),
  push: z.strictObject({
    /** Push-notification targets allowed besides public https URLs (URLs or host names). */
    allow: z.array(z.string().min(1)).default([]),
  }).prefault({}),
});

export type PolicyDocument = z.output<typeof PolicyDocumentSchema>;
export type PolicyRule = PolicyDocument['rules'][number];
export type PolicyLimit = PolicyDocument['limits'][number];
export type PolicyFrom = PolicyRule['from'];
export type ArgumentConstraint = NonNullable<PolicyRule['to']['arguments']>[string];

const MAX_POLICY_BYTES = 1024 * 1024;

/** Parses and validates a policy document; CONFIG_INVALID names `source` and each bad path. */
export function parsePolicy(text: string, source: string): PolicyDocument {
  if (Buffer.byteLength(text) > MAX_POLICY_BYTES) throw new MeshError('CONFIG_INVALID', `policy ${source}: larger than 1 MiB`);
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new MeshError('CONFIG_INVALID', `policy ${source} is not valid YAML or JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new MeshError('CONFIG_INVALID', `policy ${source}: expected a mapping at the top level`);
  }
  const result = PolicyDocumentSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new MeshError('CONFIG_INVALID', `invalid policy ${source}:\n${lines.join('\n')}`, { details: { issues: result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) } });
  }
  return result.data;
}
