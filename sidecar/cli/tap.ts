// `agentmesh tap [--agent A] [--method M] [--direction D] [--json] [--count N] [--admin URL]`: prints the
// live calls of one sidecar from its admin listener's /api/tap WebSocket, one line (or JSON) per call.
import { WebSocket } from 'ws';
import { MeshError } from '../../sdk/errors.ts';
import { stringFlag, type ParsedArgs } from './args.ts';
import type { CliContext } from './commands.ts';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:15090';

export async function runTap(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const admin = stringFlag(args, 'admin') ?? ctx.env.AGENTMESH_ADMIN_URL ?? DEFAULT_ADMIN_URL;
  const countFlag = stringFlag(args, 'count');
  const count = countFlag === undefined ? Infinity : Number(countFlag);
  if (!(count > 0) || !Number.isInteger(count) && count !== Infinity) throw new MeshError('CONFIG_INVALID', `--count: expected a positive integer, got '${countFlag ?? ''}'`);
  let base: URL;
  try {
    base = new URL('/api/tap', admin.replace(/^http/, 'ws'));
  } catch (err) {
    throw new MeshError('CONFIG_INVALID', `--admin: expected the sidecar's admin URL like ${DEFAULT_ADMIN_URL}, got '${admin}'`, { cause: err });
  }
  for (const name of ['agent', 'method', 'direction']) {
    const value = stringFlag(args, name);
    if (value !== undefined) base.searchParams.set(name, value);
  }
  const json = args.flags.get('json') === true;
  const ws = new WebSocket(base);
  let seen = 0;
  return await new Promise<number>((resolve, reject) => {
    const stop = () => { ws.close(); resolve(0); };
    ctx.signal.addEventListener('abort', stop, { once: true });
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const message = (() => { try { return (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { message?: string } }).error?.message; } catch { return undefined; } })();
        reject(new MeshError('INVALID_REQUEST', `the tap at ${admin} refused: HTTP ${res.statusCode ?? 0}${message ? ` ${message}` : ''}`));
      });
    });
    ws.once('error', (err) => reject(new MeshError('SIDECAR_UNREACHABLE', `cannot open the tap at ${admin} (is the sidecar's admin listener there? --admin URL): ${err.message}`, { cause: err })));
    if (!json) ws.once('open', () => ctx.out('TIME          DIR  METHOD                   TARGET               CALLER                              STATUS  MS      REQUEST'));
    ws.on('message', (data) => {
      const text = String(data);
      ctx.out(json ? text : formatCall(text));
      if (++seen >= count) stop();
    });
    ws.once('close', () => { ctx.signal.removeEventListener('abort', stop); resolve(0); });
  });
}

/** One call as a line of columns. */
export function formatCall(text: string): string {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return text;
  }
  const s = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '-');
  const time = s(e.time).slice(11, 23);
  const dir = e.direction === 'inbound' ? 'in ' : 'out';
  const status = `${s(e.status)}${typeof e.error === 'string' ? ` ${e.error}` : ''}`;
  return [time.padEnd(12), dir.padEnd(3), s(e.method).padEnd(24), s(e.target).padEnd(20), s(e.caller).padEnd(35), status.padEnd(7), s(e.durationMs).padEnd(7), s(e.requestId)].join(' ');
}
