// A real `agentmesh ca serve` process for tests, on port 0, waiting for its --ready-file; and the TLS
// observers the rotation tests use to see which certificate a sidecar presents on new connections.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { CLI, ROOT } from './sidecar-process.ts';
import { waitFor } from './wait.ts';

export interface CaProcess extends AsyncDisposable {
  readonly url: string;
  output(): string;
  stop(): Promise<void>;
}

/** `options.host` is the address to listen on (port 0); `options.launcher` a command prefix such as ['ip', 'netns', 'exec', ns]. */
export async function startCaProcess(dir: string, args: string[] = [], options: { host?: string; launcher?: readonly string[] } = {}): Promise<CaProcess> {
  const readyFile = join(mkdtempSync(join(tmpdir(), 'agentmesh-ca-proc-')), 'ready.json');
  const [program, ...argv] = [...(options.launcher ?? []), process.execPath, CLI, 'ca', 'serve', '--dir', dir, '--listen', `${options.host ?? '127.0.0.1'}:0`, '--ready-file', readyFile, ...args];
  const child = spawn(program ?? process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => { gone = true; });
  const stop = async () => { if (!gone) child.kill('SIGTERM'); await exited; };
  try {
    const { url } = await waitFor('CA ready file', () => {
      if (gone) throw new Error(`ca serve exited:\n${output}`);
      try { return JSON.parse(readFileSync(readyFile, 'utf8')) as { url: string }; } catch { return undefined; }
    }, 30_000);
    return { url, output: () => output, stop, [Symbol.asyncDispose]: stop };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

export interface Presented {
  at: number;
  serial: string;
  validTo: number;
}

function presented(cert: PeerCertificate): Presented {
  return { at: Date.now(), serial: cert.serialNumber, validTo: Date.parse(cert.valid_to) };
}

/** Opens a new TLS connection to `url` with a client certificate and returns the server certificate it was shown. */
export async function serverCertificateOf(url: string, client: { cert: string; key: string; ca: string }): Promise<Presented> {
  const { hostname, port } = new URL(url);
  const socket: TLSSocket = connect({ host: hostname, port: Number(port), ...client, checkServerIdentity: () => undefined });
  try {
    await new Promise<void>((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject); });
    return presented(socket.getPeerCertificate());
  } finally {
    socket.destroy();
  }
}

/**
 * An HTTPS server that plays a peer sidecar's inbound listener: it records the client certificate of
 * every new TLS connection and answers any POST with a JSON-RPC agent message.
 */
export interface TlsObserver extends AsyncDisposable {
  readonly url: string;
  readonly seen: Presented[];
  close(): Promise<void>;
}

export async function startTlsObserver(tls: { cert: string; key: string; ca: string }): Promise<TlsObserver> {
  const seen: Presented[] = [];
  const server: Server = createServer({ ...tls, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let id: unknown = null;
      try { id = (JSON.parse(Buffer.concat(chunks).toString()) as { id?: unknown }).id ?? null; } catch { /* answered anyway */ }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id, result: { message: { messageId: `m${seen.length}`, role: 'ROLE_AGENT', parts: [{ text: 'observed' }] } } }));
    });
  });
  server.on('secureConnection', (socket: TLSSocket) => { seen.push(presented(socket.getPeerCertificate())); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close, [Symbol.asyncDispose]: close };
}
