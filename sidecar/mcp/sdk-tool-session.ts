// The tool watcher's session over the MCP SDK client, for stdio servers (their bridge loads the SDK
// anyway). HTTP servers use http-tool-session.ts, which needs no SDK.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { ToolSession } from './http-tool-session.ts';

export async function openSdkToolSession(transport: Transport, clientName: string): Promise<ToolSession> {
  const client = new Client({ name: clientName, version: '0.1.0' });
  const session: ToolSession = {
    listChanged: false,
    async listTools(cursor) {
      const page = await client.listTools(cursor ? { cursor } : {});
      return { tools: page.tools, ...(page.nextCursor !== undefined ? { nextCursor: page.nextCursor } : {}) };
    },
    async ping(timeoutMs) { await client.ping({ timeout: timeoutMs }); },
    async close() { await client.close(); },
  };
  client.onclose = () => session.onclose?.();
  client.setNotificationHandler((await import('@modelcontextprotocol/sdk/types.js')).ToolListChangedNotificationSchema, () => session.onToolsChanged?.());
  await client.connect(transport);
  (session as { listChanged: boolean }).listChanged = client.getServerCapabilities()?.tools?.listChanged === true;
  return session;
}
