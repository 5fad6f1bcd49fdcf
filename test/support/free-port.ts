// Ports that are free right now on 127.0.0.1, for the few places a port must be known before the process
// that listens on it starts (cluster routes, an agent URL in a config). Held together while chosen, so
// no two are the same; another process could still take one before it is used.
import { createServer, type Server } from 'node:net';

export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    }
    return servers.map((s) => { const a = s.address(); return typeof a === 'object' && a ? a.port : 0; });
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error('no free port');
  return port;
}
