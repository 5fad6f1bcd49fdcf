// The pinned form of an MCP tool: the hash (sha256 of canonical JSON) of its definition — name,
// description, input and output schema, annotations — memoized per tool object of a registry record.
import { canonicalJson, sha256Hex } from '../audit/canonical-json.ts';

export interface ToolDefinition {
  name: string;
  description?: string | undefined;
  inputSchema?: Record<string, unknown> | undefined;
  outputSchema?: Record<string, unknown> | undefined;
  annotations?: Record<string, unknown> | undefined;
}

const memo = new WeakMap<object, string>();

/** `sha256:<hex>` of the definition; other fields of the tool object (title, _meta, icons) are not covered. */
export function definitionHash(tool: ToolDefinition): string {
  let hash = memo.get(tool);
  if (hash === undefined) {
    const { name, description, inputSchema, outputSchema, annotations } = tool;
    hash = `sha256:${sha256Hex(canonicalJson({ name, description, inputSchema, outputSchema, annotations }))}`;
    memo.set(tool, hash);
  }
  return hash;
}
