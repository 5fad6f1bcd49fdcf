// Keeps a session open to one local MCP server to learn its tool list: lists all pages, lists them
// again on notifications/tools/list_changed (300 ms debounce, as the MCP SDK client does), and
// reconnects with backoff when the server goes away. The session is http-tool-session.ts (HTTP servers)
// or sdk-tool-session.ts (stdio servers).
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '../log.ts';
import { FailureLog } from '../log-once.ts';
import type { ToolSession } from './http-tool-session.ts';

/** A tool list longer than this (all pages) is refused: a server whose pages never end is not listed into memory without end. */
export const MAX_TOOLS = 10_000;

/** notifications/tools/list_changed in a burst cause one listing, this long after the last. */
const LIST_CHANGED_DEBOUNCE_MS = 300;

export interface ToolWatcher {
  /** The last tool list seen, or undefined before the first successful listing. */
  tools(): Tool[] | undefined;
  close(): Promise<void>;
}

export function watchTools(options: {
  name: string;
  connect: () => Promise<ToolSession>;
  onTools: (tools: Tool[]) => void;
  /** Called when the server stops answering (it is then left out of the mesh until it is back). */
  onDown: () => void;
  /** How often to ping the server to notice that it is gone (HTTP servers give no other sign). */
  pingMs?: number;
  log: Logger;
}): ToolWatcher {
  let current: Tool[] | undefined;
  let session: ToolSession | undefined;
  let closed = false;
  let delay = 100;
  let timer: NodeJS.Timeout | undefined;
  let changed: NodeJS.Timeout | undefined;
  // Reconnect attempts repeat every few seconds while the server is away: one line per outage, with a count.
  const failures = new FailureLog(options.log, { what: `MCP server '${options.name}' connection` });
  const pinger = setInterval(() => {
    const s = session;
    if (s) s.ping(Math.max(1000, (options.pingMs ?? 5000) - 500)).catch(() => { void s.close(); });
  }, options.pingMs ?? 5000);
  pinger.unref();

  const list = async (s: ToolSession): Promise<Tool[]> => {
    const tools: Tool[] = [];
    let cursor: string | undefined;
    do {
      const page = await s.listTools(cursor);
      tools.push(...page.tools);
      if (tools.length > MAX_TOOLS) throw new Error(`the MCP server listed more than ${MAX_TOOLS} tools`);
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
  const onChanged = (s: ToolSession) => () => {
    clearTimeout(changed);
    changed = setTimeout(() => {
      if (session === s) list(s).then((tools) => { if (session === s) publish(tools); }, () => undefined);
    }, LIST_CHANGED_DEBOUNCE_MS);
    changed.unref();
  };
  const onClose = (s: ToolSession) => () => {
    const wasUp = session === s;
    if (wasUp) session = undefined;
    if (wasUp && !closed) options.onDown();
    if (!closed) {
      if (wasUp) options.log.warn({ mcp: options.name }, 'lost the MCP server; reconnecting');
      retry();
    }
  };
  const start = async (): Promise<void> => {
    if (closed) return;
    let s: ToolSession | undefined;
    try {
      s = await options.connect();
      if (closed) { await s.close(); return; }
      session = s;
      s.onclose = onClose(s);
      if (s.listChanged) s.onToolsChanged = onChanged(s);
      publish(await list(s));
      delay = 100;
      failures.success();
    } catch (err) {
      failures.failure(err instanceof Error ? err.message : err);
      // A session that was up and failed its listing ends like a lost server (onClose: onDown, retry).
      await s?.close().catch(() => undefined);
      retry();
    }
  };
  void start();
  return {
    tools: () => current,
    async close() {
      closed = true;
      clearTimeout(timer);
      clearTimeout(changed);
      clearInterval(pinger);
      await session?.close().catch(() => undefined);
    },
  };
}
