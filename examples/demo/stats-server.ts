// The demo's MCP server (stdio): text statistics the writer uses. The researcher's sidecar launches it
// and makes it reachable from the whole mesh. Logs go to stderr; stdout carries the protocol.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const server = new McpServer({ name: 'stats', version: '1.0.0' });
server.registerTool('word_count', {
  description: 'Counts the words and lines of a text',
  inputSchema: { text: z.string() },
  outputSchema: { words: z.number(), lines: z.number() },
  annotations: { readOnlyHint: true, idempotentHint: true },
}, async ({ text }) => {
  const stats = { words: text.split(/\s+/).filter(Boolean).length, lines: text.split('\n').filter(Boolean).length };
  return { content: [{ type: 'text', text: JSON.stringify(stats) }], structuredContent: stats };
});
await server.connect(new StdioServerTransport());
