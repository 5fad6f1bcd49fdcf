// Small HTTP helpers for the proxy: bounded body reading, JSON-RPC envelope reading and header hygiene.
// Nothing here decides routing.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';
import { NEVER_FORWARD } from './credential-headers.ts';
import { JsonDepthGuard } from './json-depth.ts';

/**
 * Reads a request body up to `limit` bytes; a larger body is refused with BODY_TOO_LARGE before parsing.
 * With `maxDepth`, JSON nested deeper than that is refused (INVALID_REQUEST) as soon as it arrives.
 * Once per request (the body can be read only once anyway).
 */
export function readBody(req: IncomingMessage, limit: number, maxDepth?: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge(limit));
  const reading = req as ReadingRequest;
  if (reading[READING] !== undefined) return Promise.reject(new Error('readBody: this request body is already being read'));
  // Events rather than `for await`: the async iterator costs a promise and a stream wrapper per request.
  return new Promise<Buffer>((resolve, reject) => {
    reading[READING] = { limit, size: 0, first: undefined, all: undefined, depth: maxDepth === undefined ? undefined : new JsonDepthGuard(maxDepth), resolve, reject };
    req.on('data', onBodyData).on('end', onBodyEnd).on('error', onBodyError).on('close', onBodyClose);
  });
}

/**
 * One body being read. The listeners are shared functions that find it on the request (an emitter calls
 * its listeners with `this` set to itself): one object per request instead of five closures and their scope.
 */
interface BodyRead {
  readonly limit: number;
  size: number;
  /** The first chunk; a small body is nothing more (no array, no copy). */
  first: Buffer | undefined;
  /** Every chunk, once there is more than one. */
  all: Buffer[] | undefined;
  readonly depth: JsonDepthGuard | undefined;
  readonly resolve: (body: Buffer) => void;
  readonly reject: (err: Error) => void;
}

const READING = Symbol('agentmesh.readBody');
type ReadingRequest = IncomingMessage & { [READING]?: BodyRead | undefined };

function onBodyData(this: ReadingRequest, chunk: Buffer): void {
  const read = this[READING];
  if (read === undefined) return;
  read.size += chunk.length;
  if (read.size > read.limit) return failBody(this, read, tooLarge(read.limit));
  try {
    read.depth?.feed(chunk);
  } catch (err) {
    return failBody(this, read, err as Error);
  }
  if (read.first === undefined) read.first = chunk;
  else if (read.all === undefined) read.all = [read.first, chunk];
  else read.all.push(chunk);
}

function onBodyEnd(this: ReadingRequest): void {
  const read = this[READING];
  if (read === undefined) return;
  stopReading(this);
  read.resolve(read.all !== undefined ? Buffer.concat(read.all, read.size) : read.first ?? Buffer.alloc(0));
}

function onBodyError(this: ReadingRequest, err: Error): void {
  const read = this[READING];
  if (read !== undefined) failBody(this, read, err);
}

function onBodyClose(this: ReadingRequest): void {
  const read = this[READING];
  if (read !== undefined && !this.complete) failBody(this, read, new MeshError('ABORTED', 'caller closed the connection'));
}

function failBody(req: ReadingRequest, read: BodyRead, err: Error): void {
  stopReading(req);
  read.reject(err);
}

function stopReading(req: ReadingRequest): void {
  req.off('data', onBodyData).off('end', onBodyEnd).off('error', onBodyError).off('close', onBodyClose);
  // Set, not deleted: a delete would turn the request into a slow dictionary-mode object.
  req[READING] = undefined;
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
