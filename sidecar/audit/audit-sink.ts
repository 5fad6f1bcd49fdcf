// Where sealed audit lines go: the JetStream stream `{bucket}-audit` (subject `{bucket}-audit.{identity name}.{instance}`)
// or, without NATS, a JSON-lines file per sidecar instance in audit.dir. A sink stores lines in order
// and says how many (a prefix) it stored; it never throws at its caller. The JetStream sink packs the
// lines of one write into as few messages as fit (JSON lines, consecutive records): one publish and ack
// per batch instead of per record.
import { appendFile, mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { openAuditStream, type AuditStream, type NatsAccess } from '../../registry/index.ts';

export interface AuditSink {
  readonly describe: string;
  /** Stores `lines` in order; resolves with how many of the first ones are stored (all, or fewer on a failure). */
  write(lines: readonly string[]): Promise<number>;
  /** The last line this instance stored (to continue the chain after a restart), if it can be read. */
  last(): Promise<string | undefined>;
  close(): Promise<void>;
}

/** The file of one instance: `{dir}/{instance}.jsonl`. */
export function auditFilePath(dir: string, instance: string): string {
  return join(dir, `${instance}.jsonl`);
}

export async function fileSink(dir: string, instance: string): Promise<AuditSink> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = auditFilePath(dir, instance);
  return {
    describe: path,
    async write(lines) {
      try {
        await appendFile(path, `${lines.join('\n')}\n`, { mode: 0o600 });
        return lines.length;
      } catch {
        return 0;
      }
    },
    async last() {
      try {
        const fh = await open(path, 'r');
        try {
          const { size } = await fh.stat();
          const length = Math.min(size, 64 * 1024);
          const buf = Buffer.alloc(length);
          await fh.read(buf, 0, length, size - length);
          return buf.toString('utf8').split('\n').filter((l) => l !== '').at(-1);
        } finally {
          await fh.close();
        }
      } catch {
        return undefined;
      }
    },
    async close() { /* nothing held open */ },
  };
}

export interface NatsSinkOptions {
  nats: string | string[];
  access: NatsAccess;
  bucket: string;
  instance: string;
  /** The subject token of this sidecar's identity (nats/server-config.ts auditOwner): `nats config` lets it publish only there. */
  owner: string;
  /** How long one batch waits for its JetStream acks. */
  ackTimeoutMs: number;
  onError: (err: unknown) => void;
}

/**
 * The JetStream sink. It connects in the background (an absent NATS never delays start-up or calls) and
 * reconnects forever; until connected, write stores nothing and the writer spools.
 */
export function natsSink(options: NatsSinkOptions): AuditSink {
  const subject = `${options.bucket}-audit.${options.owner}.${options.instance}`;
  let stream: AuditStream | undefined;
  let opening: Promise<AuditStream | undefined> | undefined;
  let closed = false;
  const connect = (): Promise<AuditStream | undefined> => (opening ??= openAuditStream({
    nats: options.nats, access: options.access, bucket: options.bucket, name: `agentmesh-audit-${options.instance}`,
  }).then((s) => {
    if (closed) { void s.close(); return undefined; }
    stream = s;
    return s;
  }, (err: unknown) => {
    options.onError(err);
    opening = undefined;
    return undefined;
  }));
  void connect();
  return {
    describe: `nats stream ${options.bucket}-audit subject ${subject}`,
    async write(lines) {
      const s = stream ?? await connect();
      if (!s) return 0;
      const messages = packLines(lines, MAX_MESSAGE_BYTES);
      // msg id = instance:first seq-last seq, so a message re-sent whole after a lost ack is stored once
      // (JetStream dedup window); a resend cut differently overlaps, and verify skips the repeated records.
      const stored = await s.publish(subject, messages.map((m) => ({
        id: `${options.instance}:${seqOf(m.first)}-${seqOf(m.last)}`, data: m.data,
      })), options.ackTimeoutMs);
      let n = 0;
      for (let i = 0; i < stored; i++) n += messages[i]?.count ?? 0;
      return n;
    },
    async last() {
      const s = stream ?? await connect();
      const message = await s?.lastOf(subject);
      return message === undefined ? undefined : message.slice(message.lastIndexOf('\n') + 1);
    },
    async close() {
      closed = true;
      await (stream ?? await opening?.catch(() => undefined))?.close();
    },
  };
}

/** Below nats-server's default max_payload (1 MiB), so a batch is never refused for its size. */
const MAX_MESSAGE_BYTES = 512 * 1024;

export interface PackedMessage {
  data: string;
  /** The message's first and last line (for its id). */
  first: string;
  last: string;
  /** How many lines it carries. */
  count: number;
}

/** Consecutive lines joined into messages of at most `maxBytes` (a single longer line goes alone). */
export function packLines(lines: readonly string[], maxBytes: number): PackedMessage[] {
  const out: PackedMessage[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < lines.length; i++) {
    const len = Buffer.byteLength(lines[i] ?? '') + 1;
    if (i > start && bytes + len > maxBytes) {
      out.push({ data: lines.slice(start, i).join('\n'), first: lines[start] ?? '', last: lines[i - 1] ?? '', count: i - start });
      start = i;
      bytes = 0;
    }
    bytes += len;
  }
  if (lines.length > start) out.push({ data: lines.slice(start).join('\n'), first: lines[start] ?? '', last: lines.at(-1) ?? '', count: lines.length - start });
  return out;
}

/** A record's seq, parsed (once per message, not per record): a field a caller controls cannot fake it. */
function seqOf(line: string): string {
  try {
    const { seq } = JSON.parse(line) as { seq?: unknown };
    return typeof seq === 'number' ? String(seq) : '0';
  } catch {
    return '0';
  }
}
