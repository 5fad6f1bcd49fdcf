// The reference proxy, run as a child process: a plain Node pass-through with no logic, the baseline a
// sidecar is compared with. Role "out": node:http in, node:https keep-alive out (client certificate);
// role "in": node:https in (client certificate required), node:http keep-alive out to the upstreams.
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface ReferenceProxyArgs {
  role: 'out' | 'in';
  /** Where requests go: the "in" proxy (role out), or the agent (role in). */
  upstream: string;
  /** Role in: requests whose path starts with /mcp go here instead. */
  mcpUpstream?: string;
  /** PEM files: the same workload certificates the sidecars use. */
  tls: { cert: string; key: string; bundle: string };
}

export interface ReferenceProxyInfo {
  url: string;
}

function main(args: ReferenceProxyArgs): void {
  const key = readFileSync(args.tls.key);
  const cert = readFileSync(args.tls.cert);
  const ca = readFileSync(args.tls.bundle);
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
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    const info: ReferenceProxyInfo = { url: `${args.role === 'out' ? 'http' : 'https'}://127.0.0.1:${port}` };
    process.stdout.write(`READY ${JSON.stringify(info)}\n`);
  });
  const stop = () => { server.close(); server.closeAllConnections(); out.destroy(); process.exit(0); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main(JSON.parse(process.argv[2] ?? '{}') as ReferenceProxyArgs);
