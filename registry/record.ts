// The registry record (DESIGN.md "Registry record"): zod schema, key layout and staleness rule.
// Validated on write and on read; protocol objects (cards, tools) stay loose so extensions pass.
import { z } from 'zod';

/** Names and instances become NATS KV key tokens, so they are limited to a safe alphabet. */
export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const Name = z.string().regex(NAME_PATTERN, 'must be 1-64 characters from [A-Za-z0-9_-]');

/** An A2A agent card as the agent serves it (v1.0 or v0.3); only what routing needs is checked. */
export const AgentCardRecordSchema = z.looseObject({
  name: z.string(),
  skills: z.array(z.looseObject({ id: z.string(), tags: z.array(z.string()).optional() })).optional(),
});

export const ToolRecordSchema = z.looseObject({
  name: z.string(),
  description: z.string().optional(),
  inputSchema: z.looseObject({}).optional(),
  outputSchema: z.looseObject({}).optional(),
  annotations: z.looseObject({}).optional(),
});

const Common = {
  name: Name,
  instance: Name,
  identity: z.string().startsWith('spiffe://'),
  endpoint: z.url({ protocol: /^https$/ }),
  labels: z.record(z.string(), z.string()).default({}),
  startedAt: z.iso.datetime(),
  heartbeatAt: z.iso.datetime(),
  /** Name grants from the mesh authority (JWTs signed with a CA key) for names beyond the default rule. */
  grants: z.array(z.string().min(1).max(8192)).max(16).optional(),
  /** A tombstone: the owner withdrew this instance (graceful shutdown); readers drop it at once. */
  withdrawn: z.literal(true).optional(),
};

export const AgentRecordSchema = z.object({ kind: z.literal('agent'), ...Common, card: AgentCardRecordSchema });
export const McpRecordSchema = z.object({ kind: z.literal('mcp'), ...Common, tools: z.array(ToolRecordSchema) });
export const RegistryRecordSchema = z.discriminatedUnion('kind', [AgentRecordSchema, McpRecordSchema]);

export type AgentRecord = z.infer<typeof AgentRecordSchema>;
export type McpRecord = z.infer<typeof McpRecordSchema>;
export type RegistryRecord = z.infer<typeof RegistryRecordSchema>;
export type RecordKind = RegistryRecord['kind'];

const KEY_PREFIX = { agent: 'agents', mcp: 'mcp' } as const satisfies Record<RecordKind, string>;

/** `agents.{name}.{instance}` or `mcp.{server}.{instance}`. */
export function recordKey(record: Pick<RegistryRecord, 'kind' | 'name' | 'instance'>): string {
  return `${KEY_PREFIX[record.kind]}.${record.name}.${record.instance}`;
}

/** A record is live while its last heartbeat is younger than the TTL. */
export function isFresh(record: RegistryRecord, ttlMs: number, now = Date.now()): boolean {
  return now - Date.parse(record.heartbeatAt) < ttlMs;
}
