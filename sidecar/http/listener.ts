// A listening HTTP(S) server with in-flight tracking and graceful close: stop accepting, let in-flight
// requests finish up to a drain timeout, then cut what is left. Knows nothing about routes.
import type { Duplex } from 'node:stream';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { prepareUnixSocket, removeUnixSocket } from './unix-socket.ts';
import type { SecureContextOptions } from 'node:tls';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface Listener {
  /** `http://host:port` or `https://host:port` with the bound port, or `unix:/path` for a Unix socket. */
  readonly url: string;
  /** The bound port (0 on a Unix socket). */
  readonly port: number;
  inFlight(): number;
  /** HTTPS only: the certificate, key and bundle for new connections (certificate rotation). */
  setSecureContext(tls: SecureContextOptions): void;
  /** Stops accepting, waits for in-flight requests up to `drainMs`, then closes the rest. Idempotent. */
  close(drainMs?: number): Promise<void>;
}

export interface ListenOptions {
  host?: string;
  port?: number;
  /** A Unix socket path instead of host and port (created with mode 0600). */
  path?: string;
  tls?: HttpsOptions;
  handler: Handler;
  /** Takes over HTTP upgrades (the admin listener's tap WebSocket); without it they are refused. */
  upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Called with errors a handler let escape (they are answered with a bare 500). */
  onError: (err: unknown) => void;
}

export async function listen(options: ListenOptions): Promise<Listener> {
  let active = 0;
  let idle: (() => void) | undefined;
  // One listener for every response, with on() rather than once(): a response emits 'close' once, and
  // once() would make a wrapper, its state and a closure per request.
  const onClose = (): void => {
    active--;
    if (active === 0) idle?.();
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    active++;
    res.on('close', onClose);
    let handling: Promise<void>;
    try {
      handling = options.handler(req, res);
    } catch (err) {
      // A handler that is not an async function can throw before it has a promise to reject.
      handling = Promise.reject(err);
    }
    handling.catch((err: unknown) => {
      options.onError(err);
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  };
  const server: Server = options.tls
    ? createHttpsServer(options.tls, onRequest)
    : createHttpServer(onRequest);
  server.keepAliveTimeout = 30_000;
  if (options.upgrade) server.on('upgrade', options.upgrade);
  const { path } = options;
  if (path !== undefined) await prepareUnixSocket(path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (path === undefined) server.listen(options.port ?? 0, options.host ?? '127.0.0.1', done);
    else {
      // Bound with umask 0177 so the socket is 0600 from its first moment; listen() binds synchronously.
      const umask = process.umask(0o177);
      try { server.listen(path, done); } finally { process.umask(umask); }
    }
  });
  const port = path === undefined ? (server.address() as AddressInfo).port : 0;
  const host = (options.host ?? '').includes(':') ? `[${options.host ?? ''}]` : options.host ?? '';
  let closing: Promise<void> | undefined;
  return {
    url: path === undefined ? `${options.tls ? 'https' : 'http'}://${host}:${port}` : `unix:${path}`,
    port,
    inFlight: () => active,
    setSecureContext: (tls) => {
      if (!options.tls) throw new TypeError('setSecureContext on a plain HTTP listener');
      (server as ReturnType<typeof createHttpsServer>).setSecureContext(tls);
    },
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
      if (path !== undefined) await removeUnixSocket(path);
    })()),
  };
}
