// The sidecar's side of the online CA: sends a CSR with a join token, or with the current SVID as the
// client certificate, to `identity.ca` over HTTPS, and checks what comes back before anyone uses it.
import { request } from 'node:https';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { z } from 'zod';
import { MeshError } from '../../sdk/errors.ts';
import { caServerId } from './join-token.ts';
import { peerSpiffeId } from './spiffe.ts';
import { svidRefusal } from './svid-rules.ts';

const SvidResponse = z.object({ id: z.string(), svid: z.string().max(64 * 1024), notAfter: z.string() });
const ErrorResponse = z.object({ error: z.object({ message: z.string().max(2048), details: z.array(z.object({ reason: z.string().max(64) })).optional() }) });
const MAX_RESPONSE = 256 * 1024;

export interface SvidRequest {
  ca: string;
  trustDomain: string;
  bundlePem: string;
  id: string;
  csrPem: string;
  keyPem: string;
  token?: string;
  /** The current SVID, presented as the client certificate for a renewal. */
  client?: { certPem: string; keyPem: string };
  signal?: AbortSignal;
}

/** Asks the CA for an SVID; resolves with its PEM once it is checked (our ID, our key, chained to the bundle, valid now). */
export async function requestSvid(req: SvidRequest): Promise<string> {
  const body = JSON.stringify({ csr: req.csrPem, ...(req.token ? { token: req.token } : {}) });
  const { status, text } = await post(req, body);
  if (status !== 200) {
    const parsed = ErrorResponse.safeParse(safeJson(text));
    const reason = parsed.success ? parsed.data.error.details?.[0]?.reason : undefined;
    const message = parsed.success ? parsed.data.error.message : `HTTP ${status}`;
    throw new MeshError(status >= 500 ? 'UPSTREAM_UNAVAILABLE' : 'IDENTITY_INVALID', `identity.ca ${req.ca} refused the CSR (${status}${reason ? ` ${reason}` : ''}): ${message}`, { details: { status, ...(reason ? { reason } : {}) } });
  }
  const parsed = SvidResponse.safeParse(safeJson(text));
  if (!parsed.success) throw new MeshError('IDENTITY_INVALID', `identity.ca ${req.ca} answered with something that is not an SVID response`);
  checkSvid(parsed.data.svid, req);
  return parsed.data.svid;
}

function checkSvid(pem: string, req: SvidRequest): void {
  const fail = (why: string): never => { throw new MeshError('IDENTITY_INVALID', `identity.ca ${req.ca} returned an unusable SVID: ${why}`); };
  let cert: X509Certificate;
  try { cert = new X509Certificate(pem); } catch { return fail('not a PEM certificate'); }
  const id = peerSpiffeId({ subjectaltname: cert.subjectAltName } as PeerCertificate);
  if (id !== req.id) fail(`it names ${id ?? 'no SPIFFE ID'}, expected ${req.id}`);
  if (!cert.checkPrivateKey(createPrivateKey(req.keyPem))) fail('it is not for the key this sidecar made');
  if (Date.parse(cert.validTo) <= Date.now()) fail(`it expired at ${cert.validTo}`);
  const refused = svidRefusal(cert.raw);
  if (refused) fail(refused);
  const roots = (req.bundlePem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));
  if (!roots.some((root) => cert.checkIssued(root) && cert.verify(root.publicKey))) fail('it is not signed by a CA in identity.bundle');
}

function post(req: SvidRequest, body: string): Promise<{ status: number; text: string }> {
  const url = new URL('/v1/svid', req.ca);
  const expected = caServerId(req.trustDomain);
  return new Promise((resolve, reject) => {
    const r = request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      ca: req.bundlePem, minVersion: 'TLSv1.2', rejectUnauthorized: true, agent: false,
      ...(req.client ? { cert: req.client.certPem, key: req.client.keyPem } : {}),
      // The CA proves itself with its own SVID, not a DNS name.
      checkServerIdentity: (_host: string, cert: PeerCertificate) =>
        peerSpiffeId(cert) === expected ? undefined : new Error(`identity.ca presented ${peerSpiffeId(cert) ?? 'no SPIFFE ID'}, expected ${expected}`),
      timeout: 15_000,
      ...(req.signal ? { signal: req.signal } : {}),
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE) res.destroy(new Error(`response larger than ${MAX_RESPONSE} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    r.on('timeout', () => r.destroy(new Error('no answer within 15 s')));
    r.on('error', (err) => reject(new MeshError('UPSTREAM_UNAVAILABLE', `identity.ca ${req.ca}: ${err.message}`, { cause: err })));
    r.end(body);
  });
}

function safeJson(text: string): unknown {
  try { return JSON.parse(text); } catch { return undefined; }
}
