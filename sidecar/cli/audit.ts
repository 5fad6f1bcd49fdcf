// `agentmesh audit tail [--follow] [--agent A] [--json]` and `agentmesh audit verify`: read the audit
// records from the JetStream stream (--nats / --config) or JSON-lines files (--file, --dir).
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { MeshError } from '../../sdk/errors.ts';
import { openAuditStream } from '../../registry/index.ts';
import { verifyAudit } from '../audit/audit-verify.ts';
import { stringFlag, type ParsedArgs } from './args.ts';
import type { CliContext } from './commands.ts';
import { storeSource, type StoreSource } from './store-source.ts';

export async function runAudit(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const action = args.positionals[1];
  if (action !== 'tail' && action !== 'verify') throw new MeshError('CONFIG_INVALID', `unknown command 'audit ${action ?? ''}': use 'audit tail' or 'audit verify'`);
  const file = stringFlag(args, 'file');
  const source = file ? undefined : await storeSource(args, ctx.env);
  const follow = action === 'tail' && args.flags.get('follow') === true;
  const lines = records(source, file, follow, ctx.signal);
  if (action === 'verify') {
    const result = verifyAudit(await collect(lines));
    if (args.flags.get('json') === true) ctx.out(JSON.stringify(result, null, 2));
    else {
      for (const i of result.instances) {
        ctx.out(i.ok ? `✔ ${i.instance}: ${i.records} records, seq 1..${i.lastSeq}${i.gaps ? `, ${i.gaps} declared gap(s)` : ''}` : `✖ ${i.instance}: ${i.problem ?? ''}`);
      }
      for (const u of result.unreadable) ctx.out(`✖ ${u}`);
      if (result.instances.length === 0) ctx.out('no audit records found');
    }
    return result.ok ? 0 : 1;
  }
  const agent = stringFlag(args, 'agent');
  const json = args.flags.get('json') === true;
  for await (const { text } of lines) {
    let r: Record<string, unknown>;
    try { r = JSON.parse(text) as Record<string, unknown>; } catch { continue; }
    if (agent && !mentions(r, agent)) continue;
    ctx.out(json ? text : describe(r));
  }
  return 0;
}

type Line = { text: string; where: string };

function records(source: StoreSource | undefined, file: string | undefined, follow: boolean, signal: AbortSignal): AsyncIterable<Line> {
  if (source?.nats) {
    const nats = source.nats;
    return (async function* () {
        const stream = await openAuditStream({ nats: nats.servers, access: nats.access, bucket: source.bucket, name: 'agentmesh-cli-audit', create: false });
        try {
          for await (const r of stream.read({ follow, signal })) yield { text: r.text, where: `stream message ${r.message} line ${r.line}` };
        } finally {
          await stream.close();
        }
      })();
  }
  const dir = source?.auditDir;
  return (async function* () {
      const files = file ? [file] : await auditFiles(dir ?? '.');
      const offsets = new Map<string, number>();
      for (;;) {
        for (const f of file ? files : await auditFiles(dir ?? '.')) {
          const text = await readFile(f, 'utf8').catch(() => '');
          const start = offsets.get(f) ?? 0;
          const all = text.split('\n');
          const complete = text.endsWith('\n') ? all.length - 1 : all.length - (follow ? 1 : 0);
          for (let i = start; i < complete; i++) {
            const line = all[i] ?? '';
            if (line !== '') yield { text: line, where: `${f} line ${i + 1}` };
          }
          offsets.set(f, complete);
        }
        if (!follow || signal.aborted) return;
        await delay(500, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) return;
      }
    })();
}

async function auditFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch((err: unknown) => {
    throw new MeshError('CONFIG_INVALID', `--dir: cannot read ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  });
  const files = names.filter((n) => n.endsWith('.jsonl') && !n.endsWith('.spool.jsonl')).map((n) => join(dir, n));
  const withTimes = await Promise.all(files.map(async (f) => ({ f, t: (await stat(f)).birthtimeMs })));
  return withTimes.sort((a, b) => a.t - b.t).map((x) => x.f);
}

async function collect(it: AsyncIterable<Line>): Promise<Line[]> {
  const out: Line[] = [];
  for await (const l of it) out.push(l);
  return out;
}

function mentions(r: Record<string, unknown>, agent: string): boolean {
  const target = r.target;
  const caller = r.caller;
  return target === `agent/${agent}` || (typeof caller === 'string' && caller.endsWith(`/agent/${agent}`))
    || (Array.isArray(r.chain) && r.chain.some((c) => typeof c === 'string' && c.endsWith(`/agent/${agent}`)));
}

function describe(r: Record<string, unknown>): string {
  const s = (v: unknown) => (v === undefined ? '' : String(v));
  const head = `${s(r.time)} ${s(r.instance)}#${s(r.seq)}`;
  if (r.kind === 'gap') return `${head} GAP ${s(r.lost)} records lost between ${s(r.from)} and ${s(r.to)}`;
  if (r.kind === 'tool') {
    return `${head} TOOL ${s(r.event)} ${s(r.server)}__${s(r.tool)}${r.pinned ? ` pinned=${s(r.pinned).slice(0, 19)}` : ''}${r.seen ? ` seen=${s(r.seen).slice(0, 19)}` : ''}${Array.isArray(r.flags) ? ` flags=${r.flags.join(',')}` : ''}`;
  }
  return `${head} ${s(r.direction)} ${s(r.caller) || '-'} -> ${s(r.target) || '-'} ${s(r.method)}${r.tool ? ` tool=${s(r.tool)}` : ''}`
    + `${r.user ? ` user=${s(r.user)}` : ''}${r.decision ? ` ${s(r.decision)}${r.rule ? `(${s(r.rule)})` : ''}` : ''} ${s(r.status)} ${s(r.durationMs)}ms req=${s(r.requestId)}`;
}
