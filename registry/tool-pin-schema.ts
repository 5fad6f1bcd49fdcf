// The tool pin: which definition (hash) of one MCP server's tool, announced by which identity, counts —
// taken on first use by a sidecar, or approved by the mesh authority. Validated on every read.
import { z } from 'zod';

export const ToolPinSchema = z.strictObject({
  server: z.string().min(1).max(64),
  tool: z.string().min(1).max(256),
  /** sha256:<hex> of the definition's canonical JSON. */
  hash: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  /** The SPIFFE ID that announced the pinned definition. */
  identity: z.string().max(2048),
  /** first-use: pinned when first seen (signed by that sidecar); approved: by `agentmesh tools approve` (signed by the CA). */
  how: z.enum(['first-use', 'approved']),
  at: z.string(),
});
export type ToolPin = z.infer<typeof ToolPinSchema>;

/**
 * Values kept per key of `{bucket}-tools` in NATS: enough to see that a first-use pin is not the key's
 * first value (it replaced or followed another one), which makes it count for nothing.
 */
export const TOOL_PIN_HISTORY = 8;
