// A listening HTTP(S) server with in-flight tracking and graceful close: stop accepting, let in-flight
// requests finish up to a drain timeout, then cut what is left. Knows nothing about routes.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https';
import type { AddressInfo } from 'node:net';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface Listener {
  /** `http://host:port` or `https://host:port` with the bound port. */
  readonly url: string;
  readonly port: number;
  inFlight(): number;
  /** Stops accepting, waits for in-flight requests up to `drainMs`, then closes the rest. Idempotent. */
  close(drainMs?: number): Promise<void>;
}

export interface ListenOptions {
  host: string;
  port: number;
  tls?: HttpsOptions;
  handler: Handler;
  /** Called with errors a handler let escape (they are answered with a bare 500). */
  onError: (err: unknown) => void;
}

export async function listen(options: ListenOptions): Promise<Listener> {
  let active = 0;
  let idle: (() => void) | undefined;
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    active++;
    res.once('close', () => {
      active--;
      if (active === 0) idle?.();
    });
    options.handler(req, res).catch((err: unknown) => {
      options.onError(err);
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  };
  const server: Server = options.tls
    ? createHttpsServer(options.tls, onRequest)
    : createHttpServer(onRequest);
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  let closing: Promise<void> | undefined;
  return {
    url: `${options.tls ? 'https' : 'http'}://${host}:${port}`,
    port,
    inFlight: () => active,
    close: (drainMs = 0) => (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (active > 0 && drainMs > 0) {
        const drained = new Promise<void>((resolve) => { idle = resolve; });
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((resolve) => { timer = setTimeout(resolve, drainMs); timer.unref(); });
        await Promise.race([drained, timeout]);
        clearTimeout(timer);
      }
      server.closeAllConnections();
      await closed;
    })()),
  };
}
