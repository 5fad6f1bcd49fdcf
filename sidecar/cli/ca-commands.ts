// `agentmesh ca serve` (the online CA, until SIGINT/SIGTERM) and `agentmesh ca token` (a one-time join
// token). The CA code (x509, jose) loads only here, never into `agentmesh sidecar`.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshError } from '../../sdk/errors.ts';
import { parseDuration } from '../config.ts';
import { createLogger } from '../log.ts';
import { stringFlag, type ParsedArgs } from './args.ts';
import type { CliContext } from './commands.ts';

export async function runCaServe(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const { serveCa } = await import('../identity/ca-server.ts');
  const listen = parseListen(stringFlag(args, 'listen') ?? '127.0.0.1:15100');
  const svidTtlMs = duration(args, 'svid-ttl', '1h', 10_000);
  const log = createLogger(stringFlag(args, 'log-level') ?? 'info', { component: 'ca' });
  const ca = await serveCa({ dir: stringFlag(args, 'dir', true), ...listen, svidTtlMs, log });
  log.info({ url: ca.url, trustDomain: ca.trustDomain, svidTtl: svidTtlMs / 1000 }, 'online CA ready');
  const readyFile = stringFlag(args, 'ready-file');
  if (readyFile) {
    await writeFile(`${readyFile}.tmp`, JSON.stringify({ url: ca.url }));
    await rename(`${readyFile}.tmp`, readyFile);
  }
  if (!ctx.signal.aborted) await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
  await ca.close();
  return 0;
}

export async function runCaToken(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const { createJoinToken } = await import('../identity/join-token.ts');
  const { caTrustDomain } = await import('../identity/ca.ts');
  const x509 = await import('@peculiar/x509');
  const dir = stringFlag(args, 'dir', true);
  const [caCertPem, caKeyPem] = await Promise.all(['ca.pem', 'ca-key.pem'].map((f) => readFile(join(dir, f), 'utf8').catch((err: unknown) => {
    throw new MeshError('CONFIG_INVALID', `--dir: cannot read ${join(dir, f)} (run 'agentmesh ca init' first?): ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  })));
  const trustDomain = caTrustDomain(new x509.X509Certificate(caCertPem ?? ''));
  const ttlMs = duration(args, 'ttl', '15m', 1000);
  const made = await createJoinToken({ caKeyPem: caKeyPem ?? '', trustDomain, id: stringFlag(args, 'id', true), ttlMs });
  ctx.out(args.flags.get('json') === true
    ? JSON.stringify({ token: made.token, id: made.id, jti: made.jti, expiresAt: made.expiresAt.toISOString() }, null, 2)
    : made.token);
  return 0;
}

function duration(args: ParsedArgs, flag: string, fallback: string, minMs: number): number {
  const text = stringFlag(args, flag) ?? fallback;
  const ms = parseDuration(text);
  if (ms === undefined || ms < minMs) throw new MeshError('CONFIG_INVALID', `--${flag}: expected a duration of at least ${minMs / 1000}s like ${fallback}, got '${text}'`);
  return ms;
}

function parseListen(value: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (!m?.[1] || !(port >= 0 && port <= 65535)) throw new MeshError('CONFIG_INVALID', `--listen: expected host:port (port 0 picks a free one), got '${value}'`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}
