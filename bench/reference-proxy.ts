// The reference proxies, run as child processes: plain Node pass-throughs with no logic, the baselines a
// sidecar is compared with. Role "out": node:http in, node:https keep-alive out (client certificate);
// role "out-undici": node:http in, an undici Pool over mTLS out (the building blocks a sidecar uses: the
// practical limit for a Node proxy); role "in": node:https in (client certificate required), node:http
// keep-alive out to the upstreams.
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Pool } from 'undici';

export interface ReferenceProxyArgs {
  role: 'out' | 'out-undici' | 'in';
  /** Where requests go: the "in" proxy (roles out), or the agent (role in). */
  upstream: string;
  /** Role in: requests whose path starts with /mcp go here instead. */
  mcpUpstream?: string;
  /** PEM files: the same workload certificates the sidecars use. */
  tls: { cert: string; key: string; bundle: string };
}

export interface ReferenceProxyInfo {
  url: string;
}

/** Hop-by-hop headers undici refuses in a request, or that must not be copied onto an answer. */
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'host', 'expect', 'te', 'trailer']);

function copyHeaders(from: IncomingMessage['headers'] | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in from) {
    const value = from[name];
    if (value !== undefined && !HOP.has(name)) out[name] = value;
  }
  return out;
}

/** Role out-undici: every request goes through one undici Pool (mTLS, keep-alive), the answer streamed into `res`. */
async function undiciHandler(args: ReferenceProxyArgs, tls: { key: Buffer; cert: Buffer; ca: Buffer }) {
  // Imported here so that the node:https pair does not carry undici's RSS.
  const undici = await import('undici');
  const pool: Pool = new undici.Pool(args.upstream, {
    connections: 64, keepAliveTimeout: 30_000,
    // The certificates name a SPIFFE ID, not a host: the chain is verified, the host name is not.
    connect: { ...tls, checkServerIdentity: () => undefined },
  });
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    pool.stream({ path: req.url ?? '/', method: (req.method ?? 'GET') as 'GET', headers: copyHeaders(req.headers), body: req }, ({ statusCode, headers }) => {
      res.writeHead(statusCode, copyHeaders(headers));
      return res;
    }).catch(() => { if (!res.headersSent) res.writeHead(502); res.end(); });
  };
  return { handle, close: () => pool.destroy() };
}

async function main(args: ReferenceProxyArgs): Promise<void> {
  const key = readFileSync(args.tls.key);
  const cert = readFileSync(args.tls.cert);
  const ca = readFileSync(args.tls.bundle);
  if (args.role === 'out-undici') {
    const { handle, close } = await undiciHandler(args, { key, cert, ca });
    const server = createHttpServer(handle);
    return serve(server, 'http', () => { void close(); });
  }
  const out = args.role === 'out'
    // The certificates name a SPIFFE ID, not a host: the chain is verified, the host name is not.
    ? new HttpsAgent({ keepAlive: true, maxSockets: 64, key, cert, ca, checkServerIdentity: () => undefined })
    : new HttpAgent({ keepAlive: true, maxSockets: 64 });
  const send = args.role === 'out' ? httpsRequest : httpRequest;
  const agentUrl = new URL(args.upstream);
  const mcpUrl = new URL(args.mcpUpstream ?? args.upstream);

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const target = req.url?.startsWith('/mcp') ? mcpUrl : agentUrl;
    const upstream = send({
      agent: out, protocol: target.protocol, hostname: target.hostname, port: target.port,
      method: req.method, path: req.url, headers: req.headers,
    }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
    req.pipe(upstream);
  };
  const server = args.role === 'out'
    ? createHttpServer(handle)
    : createHttpsServer({ key, cert, ca, requestCert: true, rejectUnauthorized: true }, handle);
  serve(server, args.role === 'out' ? 'http' : 'https', () => out.destroy());
}

function serve(server: ReturnType<typeof createHttpServer>, scheme: 'http' | 'https', closeOut: () => void): void {
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    const info: ReferenceProxyInfo = { url: `${scheme}://127.0.0.1:${port}` };
    process.stdout.write(`READY ${JSON.stringify(info)}\n`);
  });
  const stop = () => { server.close(); server.closeAllConnections(); closeOut(); process.exit(0); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

await main(JSON.parse(process.argv[2] ?? '{}') as ReferenceProxyArgs);
