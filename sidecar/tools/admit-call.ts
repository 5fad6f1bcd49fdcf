// The `/mcp/{server}` pass-through's tool-integrity step: for a tools/call (or a JSON-RPC batch holding
// some), ask the guard which instances may serve it; other requests pass untouched and unparsed.
import type { McpRecord } from '../../registry/index.ts';
import { parseJsonBody } from '../http/http-util.ts';
import type { RequestContext } from '../request-context.ts';
import type { ToolGuard } from './tool-guard.ts';

/** A filter for the forwarding candidates, or undefined when the request calls no tool. Throws the refusal. */
export async function admitToolCall(guard: ToolGuard | undefined, server: string, ctx: RequestContext, body: Buffer | undefined,
  instances: readonly McpRecord[]): Promise<((all: McpRecord[]) => McpRecord[]) | undefined> {
  if (!guard || !body) return undefined;
  const tools = ctx.tool !== undefined ? [ctx.tool] : batchTools(body);
  if (tools.length === 0) return undefined;
  let allowed = new Set(instances.map((r) => r.instance));
  for (const tool of tools) {
    const admitted = new Set((await guard.admit(server, tool, instances, ctx.requestId)).map((r) => r.instance));
    allowed = new Set([...allowed].filter((i) => admitted.has(i)));
  }
  return (all) => all.filter((r) => allowed.has(r.instance));
}

/** Tool names of the tools/call messages in a JSON-RPC batch (a body starting with `[`). */
function batchTools(body: Buffer): string[] {
  let first = 0;
  while (first < body.length && (body[first] === 0x20 || body[first] === 0x0a || body[first] === 0x0d || body[first] === 0x09)) first++;
  if (body[first] !== 0x5b) return [];
  let parsed: unknown;
  try {
    parsed = parseJsonBody(body);
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  return parsed.flatMap((m: unknown) => {
    const msg = m as { method?: unknown; params?: { name?: unknown } } | null;
    return msg?.method === 'tools/call' && typeof msg.params?.name === 'string' ? [msg.params.name.slice(0, 128)] : [];
  });
}
