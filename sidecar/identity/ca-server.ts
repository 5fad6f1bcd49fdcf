// `agentmesh ca serve`: the online CA over HTTPS. POST /v1/svid signs a CSR for a one-time join token or
// for the caller's own still-valid SVID (same ID only). Its server certificate is an SVID it issues itself.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';
import { MeshError } from '../../sdk/errors.ts';
import { readBody } from '../http/http-util.ts';
import { listen, type Listener } from '../http/listener.ts';
import type { Logger } from '../log.ts';
import { sendError, sendJson } from '../http/respond.ts';
import { caTrustDomain, issueWorkload } from './ca.ts';
import { signCsr } from './csr.ts';
import { caServerId, verifyJoinToken } from './join-token.ts';
import { parseSpiffeId, peerSpiffeId } from './spiffe.ts';
import { peerSvidRefusal } from './svid-rules.ts';
import { UsedTokens } from './used-tokens.ts';
import * as x509 from '@peculiar/x509';

export const SVID_PATH = '/v1/svid';
const SvidRequest = z.strictObject({ csr: z.string().min(1), token: z.string().min(1).max(8192).optional() });
/** Tolerated clock skew between the CA and the workloads: SVIDs start this long before they are signed. */
const SKEW_MS = 30_000;

export interface CaServerOptions {
  dir: string;
  host: string;
  port: number;
  /** Lifetime of the SVIDs it signs (default 1 h). */
  svidTtlMs?: number;
  log: Logger;
}

export interface CaServer extends AsyncDisposable {
  readonly url: string;
  readonly trustDomain: string;
  close(): Promise<void>;
  readonly closed: Promise<void>;
}

export async function serveCa(options: CaServerOptions): Promise<CaServer> {
  const caCertPem = await readCaFile(join(options.dir, 'ca.pem'));
  const caKeyPem = await readCaFile(join(options.dir, 'ca-key.pem'));
  // DIR/bundle.pem, when present, holds every root peers must trust (e.g. old and new during a root change).
  const bundlePem = await readFile(join(options.dir, 'bundle.pem'), 'utf8').catch(() => caCertPem);
  const trustDomain = caTrustDomain(new x509.X509Certificate(caCertPem));
  const svidTtlMs = options.svidTtlMs ?? 3_600_000;
  const used = await new UsedTokens(options.dir).open();
  const serverCert = () => issueWorkload({ caCertPem, caKeyPem, id: caServerId(trustDomain), ttlMs: 24 * 3_600_000 });
  const first = await serverCert();
  const listener: Listener = await listen({
    host: options.host, port: options.port,
    tls: { key: first.keyPem, cert: first.certPem, ca: bundlePem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    onError: (err) => options.log.error({ err }, 'unhandled error in the CA'),
    handler: async (req, res) => handle(req, res),
  });
  // The server certificate lives 24 h and is replaced every 12 h.
  const refresh = setInterval(() => {
    void serverCert().then((next) => listener.setSecureContext({ key: next.keyPem, cert: next.certPem, ca: bundlePem }))
      .catch((err: unknown) => options.log.error({ err }, 'could not renew the CA server certificate'));
  }, 12 * 3_600_000);
  refresh.unref();
  const prune = setInterval(() => { void used.prune().catch(() => undefined); }, 3_600_000);
  prune.unref();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if ((req.url ?? '').split('?')[0] !== SVID_PATH) throw new MeshError('ROUTE_NOT_FOUND', `no CA route ${req.url ?? ''} (POST ${SVID_PATH})`);
      if (req.method !== 'POST') throw new MeshError('METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed on ${SVID_PATH}: use POST`);
      const parsed = SvidRequest.safeParse(parseJson(await readBody(req, 64 * 1024)));
      if (!parsed.success) throw new MeshError('INVALID_REQUEST', `expected {"csr": PEM, "token"?: join token}: ${z.prettifyError(parsed.error)}`);
      const { csr, token } = parsed.data;
      const peer = req.socket as TLSSocket;
      let id: string;
      let claims: Awaited<ReturnType<typeof verifyJoinToken>> | undefined;
      if (token !== undefined) {
        claims = await verifyJoinToken(token, { caCertPem, trustDomain });
        id = claims.id;
      } else {
        id = renewalId(peer, trustDomain);
      }
      const now = Date.now();
      const notAfter = new Date(now + svidTtlMs);
      const certPem = await signCsr({ caCertPem, caKeyPem, csrPem: csr, id, notBefore: new Date(now - SKEW_MS), notAfter });
      // The token is spent only once the CSR is known good, and before the certificate leaves.
      if (claims) await used.claim(claims, req.socket.remoteAddress ?? 'unknown');
      options.log.info({ id, via: claims ? 'join token' : 'renewal', notAfter: notAfter.toISOString() }, 'issued an SVID');
      sendJson(res, 200, { id, svid: certPem, bundle: bundlePem, notAfter: notAfter.toISOString() });
    } catch (err) {
      if (err instanceof MeshError && err.httpStatus < 500) options.log.warn({ code: err.code, reason: err.message, peer: req.socket.remoteAddress }, 'refused a CSR');
      sendError(res, err, { style: 'json' });
    }
  }

  let closing: Promise<void> | undefined;
  let resolveClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => { resolveClosed = resolve; });
  const close = () => (closing ??= (async () => {
    clearInterval(refresh);
    clearInterval(prune);
    await listener.close(5000);
    resolveClosed();
  })());
  return { url: listener.url, trustDomain, close, closed, [Symbol.asyncDispose]: close };
}

/** A renewal: the caller's verified client certificate names the only ID it may renew. */
function renewalId(socket: TLSSocket, trustDomain: string): string {
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) {
    throw new MeshError('JOIN_TOKEN_INVALID', 'present a join token ("token") or your current SVID as the TLS client certificate');
  }
  if (!socket.authorized) {
    throw new MeshError('FORBIDDEN', `renewal refused: the client certificate is not a valid SVID of this CA (${String(socket.authorizationError ?? 'unverified')}); join again with a new token`);
  }
  const refused = peerSvidRefusal(cert);
  if (refused) throw new MeshError('FORBIDDEN', `renewal refused: the client certificate is not a valid X509-SVID: ${refused}`);
  const id = peerSpiffeId(cert);
  if (!id || parseSpiffeId(id).trustDomain !== trustDomain || parseSpiffeId(id).path === '') {
    throw new MeshError('FORBIDDEN', `renewal refused: the client certificate must carry one spiffe://${trustDomain}/… URI SAN`);
  }
  return id;
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new MeshError('PARSE_ERROR', 'the request body is not JSON');
  }
}

async function readCaFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new MeshError('CONFIG_INVALID', `--dir: cannot read ${path} (run 'agentmesh ca init' first?): ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}
