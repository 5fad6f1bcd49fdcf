// Keeps an MCP client connected to one local MCP server to learn its tool list: lists all pages,
// follows notifications/tools/list_changed, and reconnects with backoff when the server goes away.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '../log.ts';
import { FailureLog } from '../log-once.ts';

export interface ToolWatcher {
  /** The last tool list seen, or undefined before the first successful listing. */
  tools(): Tool[] | undefined;
  close(): Promise<void>;
}

export function watchTools(options: {
  name: string;
  connect: () => Transport;
  onTools: (tools: Tool[]) => void;
  /** Called when the server stops answering (it is then left out of the mesh until it is back). */
  onDown: () => void;
  /** How often to ping the server to notice that it is gone (HTTP servers give no other sign). */
  pingMs?: number;
  log: Logger;
}): ToolWatcher {
  let current: Tool[] | undefined;
  let client: Client | undefined;
  let closed = false;
  let delay = 100;
  let timer: NodeJS.Timeout | undefined;
  // Reconnect attempts repeat every few seconds while the server is away: one line per outage, with a count.
  const failures = new FailureLog(options.log, { what: `MCP server '${options.name}' connection` });
  const pinger = setInterval(() => {
    const c = client;
    if (c) c.ping({ timeout: Math.max(1000, (options.pingMs ?? 5000) - 500) }).catch(() => { void c.close(); });
  }, options.pingMs ?? 5000);
  pinger.unref();

  const list = async (c: Client): Promise<Tool[]> => {
    const tools: Tool[] = [];
    let cursor: string | undefined;
    do {
      const page = await c.listTools(cursor ? { cursor } : {});
      tools.push(...page.tools);
      cursor = page.nextCursor;
    } while (cursor);
    return tools;
  };
  const publish = (tools: Tool[]): void => {
    current = tools;
    options.onTools(tools);
  };
  const retry = (): void => {
    if (closed || timer) return;
    timer = setTimeout(() => { timer = undefined; void start(); }, delay);
    timer.unref();
    delay = Math.min(delay * 2, 5000);
  };
  const start = async (): Promise<void> => {
    if (closed) return;
    const c = new Client({ name: `agentmesh-sidecar/${options.name}`, version: '0.1.0' }, {
      listChanged: { tools: { onChanged: (err, tools) => { if (!err && tools) publish(tools); } } },
    });
    c.onclose = () => {
      const wasUp = client === c;
      if (wasUp) client = undefined;
      if (wasUp && !closed) options.onDown();
      if (!closed) {
        if (wasUp) options.log.warn({ mcp: options.name }, 'lost the MCP server; reconnecting');
        retry();
      }
    };
    try {
      await c.connect(options.connect());
      client = c;
      publish(await list(c));
      delay = 100;
      failures.success();
    } catch (err) {
      failures.failure(err instanceof Error ? err.message : err);
      await c.close().catch(() => undefined);
      retry();
    }
  };
  void start();
  return {
    tools: () => current,
    async close() {
      closed = true;
      clearTimeout(timer);
      clearInterval(pinger);
      await client?.close().catch(() => undefined);
    },
  };
}
