// The sidecar's configuration: the zod schema of DESIGN.md "Config file", merging of file, environment
// and flags, and validation that names the key path. Parsed once at start-up, then frozen.
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { MeshError } from '../sdk/errors.ts';
import { NAME_PATTERN } from '../registry/index.ts';
import { closest } from './suggest.ts';
import { unknownKeyHint } from './config-hints.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `15s`, `2m`, `24h`, `7d`, or a bare number of milliseconds. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim());
  const unit = m?.[2] === undefined ? undefined : UNITS[m[2]];
  return m?.[1] === undefined || unit === undefined ? undefined : Math.round(Number(m[1]) * unit);
}

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1000, kib: 1024, mb: 1e6, mib: 1024 ** 2, gib: 1024 ** 3 };

/** `4MiB`, `512KiB`, `1000000`, … into bytes. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : undefined;
  const m = /^(\d+)\s*([a-z]+)?$/i.exec(value.trim());
  const unit = SIZE_UNITS[(m?.[2] ?? 'b').toLowerCase()];
  return m?.[1] === undefined || unit === undefined ? undefined : Number(m[1]) * unit;
}

const Duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined) ctx.addIssue({ code: 'custom', message: `expected a duration like 500ms, 15s, 2m or 24h, got ${JSON.stringify(v)}` });
  return ms ?? 0;
});

const Size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const bytes = parseSize(v);
  if (bytes === undefined) ctx.addIssue({ code: 'custom', message: `expected a size like 4MiB or 65536, got ${JSON.stringify(v)}` });
  return bytes ?? 0;
});

/** `host:port` with port 0–65535; port 0 picks a free port. */
const ListenAddress = z.string().transform((v, ctx) => {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(v);
  const port = Number(m?.[2]);
  if (!m?.[1] || !(port >= 0 && port <= 65535)) {
    ctx.addIssue({ code: 'custom', message: `expected host:port (port 0 picks a free one), got ${JSON.stringify(v)}` });
    return { host: '', port: 0 };
  }
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
});

/** true/false, also as the strings a flag or variable gives. */
const Bool = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')], { error: 'expected true or false' });

/** The outbound listener also takes `unix:/absolute/path` (a Unix socket, mode 0600). */
const OutboundAddress = z.union([
  z.string().regex(/^unix:\/./).transform((v) => ({ path: v.slice('unix:'.length) })),
  ListenAddress,
], { error: 'expected host:port (port 0 picks a free one) or unix:/absolute/path' });

const Name = z.string().regex(NAME_PATTERN, 'expected 1-64 characters from [A-Za-z0-9_-]');
/** MCP server names also may not contain `__`: federated tool names are `{server}__{tool}`, split at the first `__`. */
const McpName = Name.refine((n) => !n.includes('__'), 'MCP server names may not contain "__" (it separates server and tool in federated tool names)');

const McpServerSchema = z.union([
  z.strictObject({ name: McpName, url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }) }),
  z.strictObject({
    name: McpName,
    command: z.array(z.string().min(1)).min(1, 'expected [program, ...args]'),
    env: z.record(z.string(), z.string()).default({}),
    cwd: z.string().min(1).optional(),
  }),
], { error: 'expected { name, url } (Streamable HTTP) or { name, command: [program, ...args] } (stdio)' });
export type McpServerConfig = z.output<typeof McpServerSchema>;
const HttpUrl = z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' });

/**
 * Certificate files (reloaded when they change), or the online CA: a join token the first time, then
 * renewal with the SVID (written to cert/key when they are set, so a restart needs no new token).
 */
const IdentitySchema = z.strictObject({
  trustDomain: z.string().regex(/^[a-z0-9._-]+$/, 'expected a trust domain like mesh.local'),
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  bundle: z.string().min(1),
  ca: z.url({ protocol: /^https$/, error: 'expected the https:// URL of `agentmesh ca serve`' }).optional(),
  token: z.string().min(1).optional(),
  tokenFile: z.string().min(1).optional(),
  /** Files written by `agentmesh ca grant`: names beyond agent/{name} that this identity may announce. */
  grants: z.array(z.string().min(1)).max(16).default([]),
}).superRefine((id, ctx) => {
  const issue = (key: string, message: string) => ctx.addIssue({ code: 'custom', path: [key], message });
  if (id.ca === undefined) {
    if (id.cert === undefined) issue('cert', 'required (or set identity.ca to join the mesh with a token)');
    if (id.key === undefined) issue('key', 'required (or set identity.ca to join the mesh with a token)');
    if (id.token !== undefined) issue('token', 'a join token needs identity.ca (the URL of `agentmesh ca serve`)');
    if (id.tokenFile !== undefined) issue('tokenFile', 'a join token needs identity.ca (the URL of `agentmesh ca serve`)');
    return;
  }
  if (id.token !== undefined && id.tokenFile !== undefined) issue('tokenFile', 'set identity.token or identity.tokenFile, not both');
  if ((id.cert === undefined) !== (id.key === undefined)) issue(id.cert === undefined ? 'cert' : 'key', 'identity.cert and identity.key go together (where the SVID is kept between runs)');
  if (id.token === undefined && id.tokenFile === undefined && id.cert === undefined) {
    issue('token', 'with identity.ca, set identity.token or identity.tokenFile (from `agentmesh ca token`), or identity.cert and identity.key of an SVID to renew');
  }
  // Also when another identity key is wrong, so one run names every problem; it reads only presence.
}, { when: (payload) => typeof payload.value === 'object' && payload.value !== null });

const PolicyName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected a policy name');
/** Retries: attempts in all (1 = never retry), full-jitter backoff, and the per-target budget. */
const RetryPolicySchema = z.strictObject({
  maxAttempts: z.number().int().min(1).max(10).default(3),
  backoff: Duration.default(25),
  maxBackoff: Duration.default(1000),
  budgetRatio: z.number().min(0).max(1).default(0.2),
  budgetPerSecond: z.number().min(0).max(10_000).default(10),
});
/** Breakers (one per instance): window, volume threshold, error percentage, consecutive failures, reset. */
const BreakerPolicySchema = z.strictObject({
  window: Duration.default(10_000),
  volumeThreshold: z.number().int().min(1).default(5),
  errorThresholdPercentage: z.number().min(1).max(100).default(50),
  consecutiveFailures: z.number().int().min(1).default(5),
  resetTimeout: Duration.default(1000),
  maxResetTimeout: Duration.default(30_000),
});
export type RetryPolicy = z.output<typeof RetryPolicySchema>;
export type BreakerPolicy = z.output<typeof BreakerPolicySchema>;
const DEFAULT_RETRY: RetryPolicy = RetryPolicySchema.parse({});
const DEFAULT_BREAKER_POLICY: BreakerPolicy = BreakerPolicySchema.parse({});

/** Signature algorithms a user's JWT may use: asymmetric only (never `none`, never an HMAC secret). */
const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

const JwtAuthSchema = z.strictObject({
  /** The `iss` every token must carry. */
  issuer: z.string().min(1),
  /** Accepted `aud` values (one must match). */
  audiences: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((v) => (Array.isArray(v) ? v : [v])),
  /** A JWKS file (read at start-up) … */
  jwksFile: z.string().min(1).optional(),
  /** … or an https URL (never one named by a token), fetched with jose's cache and cooldown. */
  jwksUrl: z.url({ protocol: /^https$/, error: 'expected an https:// URL' }).optional(),
  /** A PEM file of CAs trusted for jwksUrl besides the system's. */
  jwksCa: z.string().min(1).optional(),
  /** Unknown `kid`s refetch the JWKS at most this often. */
  jwksCooldown: Duration.default(30_000).refine((ms) => ms >= 1000, 'expected at least 1s'),
  algorithms: z.array(z.enum(JWT_ALGORITHMS, { error: `expected one of ${JWT_ALGORITHMS.join(', ')} (none and HS* are never accepted)` })).min(1).default(['RS256', 'ES256']),
  /** Clock skew allowed on exp/nbf/iat. */
  leeway: Duration.default(30_000).refine((ms) => ms <= 60_000, 'expected at most 60s'),
  /** Claims copied into the delegation chain (and shown to agents and the policy) besides the subject. */
  claims: z.array(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'expected a claim name')).max(32).default([]),
}).superRefine((j, ctx) => {
  if ((j.jwksFile === undefined) === (j.jwksUrl === undefined)) ctx.addIssue({ code: 'custom', message: 'expected exactly one of jwksFile or jwksUrl' });
  if (j.jwksCa !== undefined && j.jwksUrl === undefined) ctx.addIssue({ code: 'custom', path: ['jwksCa'], message: 'needs jwksUrl' });
});
export type JwtAuthConfig = z.output<typeof JwtAuthSchema>;

const NameGlob = z.string().regex(/^[A-Za-z0-9_*?-]{1,64}$/, 'expected a name or a glob of [A-Za-z0-9_-*?]');
/** `20/s`, `600/m`, `1000/h`: tokens per period. */
const Rate = z.string().transform((v, ctx) => {
  const m = /^(\d+(?:\.\d+)?)\/(s|m|h)$/.exec(v.trim());
  const perMs = m?.[2] === 's' ? 1000 : m?.[2] === 'm' ? 60_000 : m?.[2] === 'h' ? 3_600_000 : undefined;
  if (!m?.[1] || perMs === undefined || Number(m[1]) <= 0) {
    ctx.addIssue({ code: 'custom', message: `expected a rate like 20/s, 600/m or 1000/h, got ${JSON.stringify(v)}` });
    return { tokens: 0, perMs: 1000 };
  }
  return { tokens: Number(m[1]), perMs };
});
const RateLimitSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/).optional(),
  from: z.strictObject({
    identity: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((v) => (Array.isArray(v) ? v : [v])).optional(),
  }).default({}),
  to: z.strictObject({ agent: NameGlob.optional(), mcp: NameGlob.optional() })
    .refine((to) => (to.agent === undefined) !== (to.mcp === undefined), 'expected exactly one of agent or mcp'),
  rate: Rate,
  burst: z.number().int().min(1).optional(),
});
export type RateLimitConfig = z.output<typeof RateLimitSchema>;

export const SidecarConfigSchema = z.strictObject({
  agent: z.strictObject({
    name: Name.optional(),
    url: HttpUrl,
    labels: z.record(z.string(), z.string()).default({}),
    /** How long start-up waits for the agent's card before giving up. */
    startupTimeout: Duration.default(30_000),
    /** How often the sidecar reads the agent's card to see that it is alive; 0s turns the check off. */
    healthInterval: Duration.default(5000).refine((ms) => ms === 0 || ms >= 100, 'expected 0s (off) or at least 100ms'),
    /** A card read slower than this counts as a failure. */
    healthTimeout: Duration.default(2000).refine((ms) => ms >= 10, 'expected at least 10ms'),
    /** Failed reads in a row after which the agent is withdrawn from the registry until it answers again. */
    healthThreshold: z.coerce.number().int().min(1).max(100).default(3),
  }).optional(),
  mcp: z.strictObject({
    servers: z.array(McpServerSchema).default([]).refine(
      (list) => new Set(list.map((s) => s.name)).size === list.length, 'MCP server names must be unique'),
    /** An MCP session with no request in flight and no open stream this long is ended (a stdio session's process too). */
    sessionIdleTimeout: Duration.default(10 * 60_000).refine((ms) => ms >= 1000, 'expected at least 1s'),
  }).prefault({}),
  registry: z.strictObject({
    /** One URL, several separated by commas, or a list (a NATS cluster). */
    nats: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    /** mTLS to NATS with identity.cert/key, identity.bundle as the CA (the server: a DNS/IP SAN for its host, or spiffe://TD/nats). */
    tls: Bool.default(false),
    /** A NATS .creds file, or a YAML/JSON file with { user, password } or { token }. */
    credentials: z.string().min(1).optional(),
    bucket: Name.default('agentmesh'),
    ttl: Duration.default(15_000).refine((ms) => ms >= 1000, 'expected at least 1s'),
    /** Embedded registry only: the directory the processes on this host share. */
    dir: z.string().min(1).optional(),
    /** Copies JetStream keeps of each bucket and stream a sidecar creates (registry, tasks, policy, pins, audit…): 3 on a 3-node cluster. */
    replicas: z.coerce.number().int().min(1).max(5).default(1),
  }).prefault({}).superRefine((r, ctx) => {
    if (r.replicas > 1 && r.nats === undefined) ctx.addIssue({ code: 'custom', path: ['replicas'], message: 'needs registry.nats (the embedded registry is one directory on one host)' });
    for (const key of ['tls', 'credentials'] as const) {
      if (r[key] && r.nats === undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'needs registry.nats (the embedded registry has no server to authenticate to)' });
    }
  }),
  identity: IdentitySchema,
  listen: z.strictObject({
    outbound: OutboundAddress.default({ host: '127.0.0.1', port: 15001 }),
    inbound: ListenAddress.default({ host: '0.0.0.0', port: 15443 }),
    admin: ListenAddress.default({ host: '127.0.0.1', port: 15090 }),
  }).prefault({}),
  /** The host other sidecars use to reach the inbound listener (defaults to its bind host, or 127.0.0.1 for 0.0.0.0). */
  advertise: z.string().min(1).optional(),
  /** Unique per sidecar process; a random id when not set. */
  instance: Name.optional(),
  hop: z.strictObject({
    /** Request headers removed before the first hop, besides authorization, cookie, proxy-authorization and x-api-key. */
    dropHeaders: z.array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected an HTTP header name')).default([]),
  }).prefault({}),
  /** End users: the bearer JWT the local agent hands its sidecar (README "End users and delegation"). */
  auth: z.strictObject({
    jwt: JwtAuthSchema.optional(),
  }).prefault({}),
  /** The signed delegation chain between sidecars and the per-origin call budget it carries. */
  delegation: z.strictObject({
    /** Calls one originating request may make in all, across every hop; unset: no budget (no chain without a user). */
    callBudget: z.coerce.number().int().min(1).max(1_000_000).optional(),
    /** Lifetime of the token signed for one hop. */
    ttl: Duration.default(30_000).refine((ms) => ms >= 1000 && ms <= 300_000, 'expected between 1s and 5m'),
  }).prefault({}),
  /** Token buckets per (caller, target), in the shape of the policy document's `limits` (rate and burst). */
  rateLimits: z.array(RateLimitSchema).default([]),
  /** Push-notification targets allowed besides public https URLs (URLs or host names), as the policy's `push.allow`. */
  push: z.strictObject({
    allow: z.array(z.string().min(1).max(2048)).default([]),
  }).prefault({}),
  limits: z.strictObject({
    maxBody: Size.default(4 * 1024 * 1024),
    /** JSON request bodies nested deeper than this are refused while they arrive, before parsing. */
    maxJsonDepth: z.coerce.number().int().min(2).max(1000).default(64),
    /** An upstream SSE line or event larger than this ends the stream with an error event. */
    maxSseEvent: Size.default(1024 * 1024).refine((n) => n >= 1024, 'expected at least 1KiB'),
    /** Calls that have crossed this many sidecar hops are refused (stops A → B → A loops). */
    maxHops: z.coerce.number().int().min(1).max(255).default(8),
    /** The adaptive concurrency limit per local agent: where it starts and its bounds. */
    concurrency: z.strictObject({
      initial: z.coerce.number().int().min(1).max(100_000).default(20),
      min: z.coerce.number().int().min(1).max(100_000).default(1),
      max: z.coerce.number().int().min(1).max(100_000).default(1000),
    }).prefault({}).refine((c) => c.min <= c.initial && c.initial <= c.max, 'expected min <= initial <= max'),
    /** Calls that may wait for the local agent (all callers together); 0 = no queue. */
    queue: z.coerce.number().int().min(0).max(100_000).default(100),
    /** Open streams (SendStreamingMessage, SubscribeToTask) to the local agent in all, and per caller. */
    streams: z.coerce.number().int().min(1).max(1_000_000).default(1000),
    streamsPerCaller: z.coerce.number().int().min(1).max(1_000_000).default(100),
    /** Calling side: calls to one target that may be pending at this sidecar before it answers 503 at once. */
    pendingPerTarget: z.coerce.number().int().min(1).max(1_000_000).default(1000),
    /** Per caller identity (SPIFFE ID): a hard cap on concurrent calls, a stream cap, a weight in the fair share. */
    callers: z.record(z.string().regex(/^spiffe:\/\/[^/]+\/./, 'expected a SPIFFE ID like spiffe://mesh.local/agent/name'), z.strictObject({
      maxConcurrent: z.number().int().min(1).optional(),
      maxStreams: z.number().int().min(1).optional(),
      weight: z.number().min(0.01).max(1000).optional(),
    })).default({}),
  }).prefault({}),
  /** Named retry and breaker policies, defaults, and per-target choices (the shape of Dapr's resiliency spec). */
  resilience: z.strictObject({
    /** A SendMessage is claimed mesh-wide (KV bucket `{bucket}-dedup`) before it runs: resent to another instance, it is refused. */
    meshDedup: Bool.default(false),
    defaults: z.strictObject({
      timeout: Duration.default(30_000),
      retry: PolicyName.default('default'),
      breaker: PolicyName.default('default'),
    }).prefault({}),
    policies: z.strictObject({
      retries: z.record(PolicyName, RetryPolicySchema).default({}),
      breakers: z.record(PolicyName, BreakerPolicySchema).default({}),
    }).prefault({}),
    targets: z.record(z.string().regex(NAME_PATTERN, 'expected an agent or MCP server name'), z.strictObject({
      timeout: Duration.optional(), retry: PolicyName.optional(), breaker: PolicyName.optional(),
    })).default({}),
  }).prefault({}).superRefine((r, ctx) => {
    const check = (kind: 'retries' | 'breakers', name: string | undefined, path: (string | number)[]) => {
      if (name !== undefined && !(name in r.policies[kind]) && name !== 'default') {
        ctx.addIssue({ code: 'custom', path, message: `no ${kind === 'retries' ? 'retry' : 'breaker'} policy named '${name}' in resilience.policies.${kind}` });
      }
    };
    check('retries', r.defaults.retry, ['defaults', 'retry']);
    check('breakers', r.defaults.breaker, ['defaults', 'breaker']);
    for (const [target, t] of Object.entries(r.targets)) {
      check('retries', t.retry, ['targets', target, 'retry']);
      check('breakers', t.breaker, ['targets', target, 'breaker']);
    }
  }),
  shutdown: z.strictObject({
    /** How long SIGTERM waits for in-flight calls before closing them. */
    drainTimeout: Duration.default(15_000),
  }).prefault({}),
  /** The audit stream (DESIGN.md "Policy, delegation and audit"): one hash-chained record per call and decision. */
  audit: z.strictObject({
    enabled: Bool.default(true),
    /** Without NATS: where `{instance}.jsonl` is written; with NATS: where records wait while NATS is away. Default: {registry dir}/{bucket}-audit. */
    dir: z.string().min(1).optional(),
    /** Records held in memory before they are stored or spooled; beyond it they are lost and a gap record says so. */
    maxPending: z.coerce.number().int().min(10).max(1_000_000).default(10_000),
    /** The on-disk spool (NATS away) holds at most this much. */
    spoolSize: Size.default(64 * 1024 * 1024),
    batchSize: z.coerce.number().int().min(1).max(1000).default(256),
    flushInterval: Duration.default(100).refine((ms) => ms >= 1 && ms <= 10_000, 'expected 1ms to 10s'),
    /** How long one batch waits for its JetStream acks. */
    ackTimeout: Duration.default(2000).refine((ms) => ms >= 100, 'expected at least 100ms'),
  }).prefault({}),
  /** Tool integrity: pinning of MCP tool definitions and flagged descriptions. */
  tools: z.strictObject({
    /** first-use: a tool's definition is pinned when first seen; approve: calls wait for `agentmesh tools approve`. */
    pinning: z.enum(['first-use', 'approve']).default('first-use'),
    /** warn: flagged descriptions are shown and audited; block: calls to such tools are refused. */
    flagged: z.enum(['warn', 'block']).default('warn'),
  }).prefault({}),
  /** The mesh policy from a file (reloaded when it changes) instead of the registry's policy store. */
  policy: z.strictObject({
    file: z.string().min(1).optional(),
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** One structured line per call (request id, caller, target, method, status, duration, retries). */
    access: Bool.default(false),
  }).prefault({}),
  /** Tracing: W3C trace context, a client span per outbound call, a server span per inbound call, OTLP/HTTP (JSON) export. */
  telemetry: z.strictObject({
    enabled: Bool.default(false),
    /** The OTLP/HTTP traces URL (JSON encoding). */
    endpoint: HttpUrl.default('http://127.0.0.1:4318/v1/traces'),
    /** The share of new traces recorded, 0-1; a caller's sampled flag is followed. */
    sampling: z.coerce.number().min(0, 'expected 0-1').max(1, 'expected 0-1').default(1),
    serviceName: z.string().min(1).max(100).default('agentmesh-sidecar'),
  }).prefault({}),
});

export type SidecarConfigInput = z.input<typeof SidecarConfigSchema>;
export type SidecarConfig = Readonly<z.output<typeof SidecarConfigSchema>>;

/** Every leaf key a flag (`--registry.ttl 5s`) or variable (`AGENTMESH_REGISTRY_TTL=5s`) may set. */
export const CONFIG_KEYS = [
  'agent.name', 'agent.url', 'agent.startupTimeout', 'agent.healthInterval', 'agent.healthTimeout', 'agent.healthThreshold',
  'mcp.sessionIdleTimeout', 'registry.nats', 'registry.tls', 'registry.credentials', 'registry.bucket', 'registry.ttl', 'registry.dir', 'registry.replicas',
  'identity.trustDomain', 'identity.cert', 'identity.key', 'identity.bundle', 'identity.ca', 'identity.token', 'identity.tokenFile',
  'listen.outbound', 'listen.inbound', 'listen.admin', 'advertise', 'instance',
  'limits.maxBody', 'limits.maxJsonDepth', 'limits.maxSseEvent', 'limits.maxHops', 'limits.concurrency.initial', 'limits.concurrency.min', 'limits.concurrency.max',
  'limits.queue', 'limits.streams', 'limits.streamsPerCaller', 'limits.pendingPerTarget', 'resilience.defaults.timeout', 'resilience.meshDedup', 'shutdown.drainTimeout',
  'audit.enabled', 'audit.dir', 'tools.pinning', 'tools.flagged', 'policy.file', 'log.level',
  'auth.jwt.issuer', 'auth.jwt.audiences', 'auth.jwt.jwksFile', 'auth.jwt.jwksUrl', 'auth.jwt.jwksCa', 'auth.jwt.leeway', 'delegation.callBudget', 'delegation.ttl',
  'log.access', 'telemetry.enabled', 'telemetry.endpoint', 'telemetry.sampling', 'telemetry.serviceName',
] as const;

/** `identity.trustDomain` → `AGENTMESH_IDENTITY_TRUST_DOMAIN`. */
export function envName(key: string): string {
  return `AGENTMESH_${key.replace(/([a-z])([A-Z])/g, '$1_$2').replace(/\./g, '_').toUpperCase()}`;
}

export interface ConfigSources {
  /** The parsed config file, if any. */
  file?: unknown;
  /** Process environment; only AGENTMESH_* names of CONFIG_KEYS are read. */
  env?: Record<string, string | undefined>;
  /** Dotted keys from the command line. */
  flags?: Record<string, string>;
}

/** Merges file < environment < flags, validates, and freezes. Throws CONFIG_INVALID naming each bad key. */
export function resolveConfig(sources: ConfigSources): SidecarConfig {
  const merged: Record<string, unknown> = structuredClone(isPlainObject(sources.file) ? sources.file : {});
  if (sources.file !== undefined && !isPlainObject(sources.file)) {
    throw new MeshError('CONFIG_INVALID', 'config: expected a mapping at the top level of the config file');
  }
  for (const key of CONFIG_KEYS) {
    const value = sources.env?.[envName(key)];
    if (value !== undefined && value !== '') setPath(merged, key, value);
  }
  for (const [key, value] of Object.entries(sources.flags ?? {})) {
    if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
      const near = closest(key, CONFIG_KEYS);
      throw new MeshError('CONFIG_INVALID', `--${key}: unknown config key${near ? ` (did you mean --${near}?)` : ` (known: ${CONFIG_KEYS.join(', ')})`}`);
    }
    setPath(merged, key, value);
  }
  const result = SidecarConfigSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}${unknownKeyHint(i)}`);
    throw new MeshError('CONFIG_INVALID', `invalid config:\n${lines.join('\n')}`, { details: { issues: result.error.issues } });
  }
  return deepFreeze(result.data);
}

/** The deadline for calls to `target` (an agent or MCP server name). */
export function targetTimeout(config: SidecarConfig, target: string): number {
  return config.resilience.targets[target]?.timeout ?? config.resilience.defaults.timeout;
}

/** The retry policy for `target`: its own choice, else the default's; `default` is built in. */
export function targetRetry(config: SidecarConfig, target: string): RetryPolicy {
  const name = config.resilience.targets[target]?.retry ?? config.resilience.defaults.retry;
  return config.resilience.policies.retries[name] ?? DEFAULT_RETRY;
}

export function targetBreaker(config: SidecarConfig, target: string): BreakerPolicy {
  const name = config.resilience.targets[target]?.breaker ?? config.resilience.defaults.breaker;
  return config.resilience.policies.breakers[name] ?? DEFAULT_BREAKER_POLICY;
}

/** Reads a YAML or JSON config file (by extension; YAML otherwise). */
export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new MeshError('CONFIG_INVALID', `cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  try {
    return extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new MeshError('CONFIG_INVALID', `config file ${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`, { cause: err });
  }
}

function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    node = isPlainObject(next) ? next : (node[part] = {}) as Record<string, unknown>;
  }
  node[parts[parts.length - 1] ?? key] = value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
