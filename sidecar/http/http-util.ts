// Small HTTP helpers for the proxy: bounded body reading, JSON-RPC envelope reading and header hygiene.
// Nothing here decides routing.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';
import { NEVER_FORWARD } from './credential-headers.ts';
import { JsonDepthGuard } from './json-depth.ts';

/**
 * Reads a request body up to `limit` bytes; a larger body is refused with BODY_TOO_LARGE before parsing.
 * With `maxDepth`, JSON nested deeper than that is refused (INVALID_REQUEST) as soon as it arrives.
 */
export function readBody(req: IncomingMessage, limit: number, maxDepth?: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge(limit));
  // Events rather than `for await`: the async iterator costs a promise and a stream wrapper per request.
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const depth = maxDepth === undefined ? undefined : new JsonDepthGuard(maxDepth);
    const fail = (err: Error): void => { cleanup(); reject(err); };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) return fail(tooLarge(limit));
      try {
        depth?.feed(chunk);
      } catch (err) {
        return fail(err as Error);
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onClose = (): void => { if (!req.complete) fail(new MeshError('ABORTED', 'caller closed the connection')); };
    const cleanup = (): void => {
      req.off('data', onData).off('end', onEnd).off('error', fail).off('close', onClose);
    };
    req.on('data', onData).on('end', onEnd).on('error', fail).on('close', onClose);
  });
}

function tooLarge(limit: number): MeshError {
  return new MeshError('BODY_TOO_LARGE', `request body exceeds the limit of ${limit} bytes (limits.maxBody)`, { details: { limit } });
}

export interface RpcEnvelope {
  id: string | number | null;
  method: string;
  params: unknown;
}

/** A request body as JSON (undefined when empty); PARSE_ERROR (-32700) when it is not JSON. */
export function parseJsonBody(body: Buffer | undefined): unknown {
  if (!body || body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new MeshError('PARSE_ERROR', 'request body is not valid JSON', { cause: err });
  }
}

/**
 * Parses a JSON-RPC request body just far enough to know its id and method. The id goes into `into`
 * as soon as it is read, so an error about the rest of the envelope can still echo it.
 */
export function readEnvelope(body: Buffer, into?: { rpcId?: string | number | null | undefined }): RpcEnvelope {
  const value = parseJsonBody(body);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MeshError('INVALID_REQUEST', 'expected a JSON-RPC 2.0 request object');
  }
  const { jsonrpc, method, id, params } = value as Record<string, unknown>;
  const rpcId = typeof id === 'string' || typeof id === 'number' ? id : null;
  if (into) into.rpcId = rpcId;
  if (jsonrpc !== '2.0' || typeof method !== 'string') {
    throw new MeshError('INVALID_REQUEST', 'expected a JSON-RPC 2.0 request with "jsonrpc": "2.0" and a string "method"');
  }
  return { id: rpcId, method, params };
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) and those the proxy sets itself. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length',
]);

/**
 * Copies request headers for the next hop, dropping hop-by-hop, credentials and mesh-owned headers
 * (`never`: credential-headers.ts, with config hop.dropHeaders on the outbound side).
 */
export function forwardHeaders(headers: IncomingHttpHeaders, extra: Record<string, string> = {}, never: ReadonlySet<string> = NEVER_FORWARD): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connectionTokens = connectionHeaderTokens(headers);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || never.has(name) || connectionTokens?.has(name)) continue;
    out[name] = value;
  }
  for (const name in extra) out[name] = extra[name] as string;
  return out;
}

/** Copies response headers back to the caller, dropping hop-by-hop ones. */
export function responseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || (HOP_BY_HOP.has(name) && name !== 'content-length')) continue;
    out[name] = value;
  }
  return out;
}

function connectionHeaderTokens(headers: IncomingHttpHeaders): Set<string> | undefined {
  const value = headers.connection;
  // What nearly every client sends: its one token is hop-by-hop anyway (no Set per request).
  if (!value || value === 'keep-alive' || value === 'Keep-Alive') return undefined;
  return new Set(value.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
}
