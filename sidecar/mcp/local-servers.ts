// The MCP servers this sidecar fronts (config mcp.servers): Streamable HTTP upstreams reached through a
// connection pool, stdio upstreams launched behind a StdioBridge. Each one's tool list is watched and
// announced in the registry as an `mcp` record, updated when the server says its tools changed.
// The MCP SDK is loaded only for stdio servers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Pool } from '../transport/undici.ts';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { parseJsonBody } from '../http/http-util.ts';
import type { Announcement, AnnouncedRecord } from '../../registry/index.ts';
import type { McpServerConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { StdioBridge } from './stdio-bridge.ts';
import type { ToolWatcher } from './tool-watcher.ts';

export type LocalMcpServer =
  | { kind: 'http'; name: string; url: URL; dispatcher: Pool }
  | { kind: 'stdio'; name: string; bridge: StdioBridge };

export interface LocalMcpServers {
  get(name: string): LocalMcpServer | undefined;
  /** Open stdio MCP sessions across the servers, for /api/state. */
  sessions(): number;
  /** Deletes this sidecar's MCP records (first step of a graceful shutdown). */
  withdraw(): Promise<void>;
  close(): Promise<void>;
}

export interface McpAnnouncer {
  announce(record: AnnouncedRecord): Promise<Announcement>;
}

export async function startLocalMcpServers(options: {
  servers: readonly McpServerConfig[];
  registry: McpAnnouncer;
  /** The fields of the registry record that do not depend on the server. */
  record: { instance: string; identity: string; endpoint: string; grants?: string[] };
  /** mcp.sessionIdleTimeout: a stdio session idle this long is closed and its process ends. */
  sessionIdleTimeoutMs: number;
  log: Logger;
}): Promise<LocalMcpServers> {
  if (options.servers.length === 0) return { get: () => undefined, sessions: () => 0, withdraw: async () => undefined, close: async () => undefined };
  // The MCP SDK (stdio bridge, SDK client) only for stdio servers; HTTP servers are watched over their pool.
  const stdioServers = options.servers.some((s) => !('url' in s));
  const [{ watchTools }, { openHttpToolSession }, stdio] = await Promise.all([
    import('./tool-watcher.ts'), import('./http-tool-session.ts'),
    stdioServers ? Promise.all([import('./stdio-bridge.ts'), import('./sdk-tool-session.ts')]) : undefined,
  ]);
  const byName = new Map<string, LocalMcpServer>();
  const watchers: ToolWatcher[] = [];
  const announcements = new Map<string, Promise<Announcement>>();
  for (const spec of options.servers) {
    const log = options.log.child({ mcp: spec.name });
    let server: LocalMcpServer;
    let watcher: ToolWatcher;
    const clientName = `agentmesh-sidecar/${spec.name}`;
    const onDown = (): void => {
      const existing = announcements.get(spec.name);
      announcements.delete(spec.name);
      void existing?.then((a) => a.withdraw()).catch(() => undefined);
      log.warn('MCP server is not answering; withdrawn from the registry until it is back');
    };
    const onTools = (tools: Tool[]): void => {
      const existing = announcements.get(spec.name);
      const next = existing
        ? existing.then(async (a) => { await a.update({ tools }); return a; })
        : options.registry.announce({ kind: 'mcp', name: spec.name, labels: {}, tools, ...options.record });
      announcements.set(spec.name, next);
      next.then(() => log.info({ tools: tools.length }, 'announced MCP server'), (err: unknown) => log.warn({ err }, 'could not announce MCP server'));
    };
    if ('url' in spec) {
      const url = new URL(spec.url);
      const pool = new Pool(url.origin, { connections: 32, headersTimeout: 0, bodyTimeout: 0 });
      server = { kind: 'http', name: spec.name, url, dispatcher: pool };
      watcher = watchTools({ name: spec.name, log, onTools, onDown, connect: () => openHttpToolSession({ url, pool, clientName }) });
    } else {
      if (!stdio) throw new Error('unreachable: stdio modules not loaded');
      const [{ spawnStdio, StdioBridge }, { openSdkToolSession }] = stdio;
      const command = { command: spec.command, env: spec.env, cwd: spec.cwd };
      server = { kind: 'stdio', name: spec.name, bridge: new StdioBridge(spec.name, command, log, options.sessionIdleTimeoutMs) };
      // The watcher's own child is the supervised instance: restarted with backoff if it dies.
      watcher = watchTools({ name: spec.name, log, onTools, onDown, connect: () => openSdkToolSession(spawnStdio(spec.name, command, log), clientName) });
    }
    byName.set(spec.name, server);
    watchers.push(watcher);
  }
  return {
    get: (name) => byName.get(name),
    sessions: () => [...byName.values()].reduce((n, s) => n + (s.kind === 'stdio' ? s.bridge.size : 0), 0),
    async withdraw() {
      await Promise.allSettled(watchers.map((w) => w.close()));
      await Promise.allSettled([...announcements.values()].map(async (a) => (await a).withdraw()));
    },
    async close() {
      await Promise.allSettled(watchers.map((w) => w.close()));
      await Promise.allSettled([...byName.values()].map((s) => (s.kind === 'http' ? s.dispatcher.close() : s.bridge.close())));
    },
  };
}

/** Hands an inbound request for a stdio server to its bridge (the body parsed, as the SDK expects). */
export async function serveStdio(server: Extract<LocalMcpServer, { kind: 'stdio' }>, req: IncomingMessage, res: ServerResponse, body: Buffer | undefined, opened?: (sessionId: string) => void): Promise<void> {
  await server.bridge.handle(req, res, parseJsonBody(body), opened);
}
