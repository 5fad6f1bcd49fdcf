// Checks audit records per sidecar instance: each record's hash, its link to the one before, and its
// sequence. Names the first record that was altered, removed, inserted or reordered. Pure: takes lines.
import { GENESIS, recordHash } from './audit-record.ts';

export interface InstanceResult {
  instance: string;
  records: number;
  lastSeq: number;
  gaps: number;
  ok: boolean;
  /** The first problem, naming the record (stream position or line, and its seq). */
  problem?: string;
}

interface Chain {
  records: number;
  lastSeq: number;
  lastHash: string;
  gaps: number;
  /** seq → hash of the last RECENT records accepted, to recognise a re-sent batch that overlaps them. */
  recent: Map<number, string>;
  /** Inside a repeat of accepted records: the seq it must go on with, and where it started. */
  replay?: { next: number; at: string } | undefined;
  problem?: string;
}

/** More than a batch (audit.batchSize is at most 1000): a resend overlaps at most one unacknowledged batch. */
const RECENT = 1024;

/**
 * `lines` in stored order, each with where it is (e.g. "line 12" or "stream message 40 line 3"). A repeat of
 * recently accepted records that runs on, one by one, up to the last of them (a batch re-sent after a lost
 * ack, possibly cut differently) is skipped; a repeat that stops short is named as inserted.
 */
export function verifyAudit(lines: Iterable<{ text: string; where: string }>): { ok: boolean; instances: InstanceResult[]; unreadable: string[] } {
  const chains = new Map<string, Chain>();
  const unreadable: string[] = [];
  for (const { text, where } of lines) {
    let record: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      record = parsed as Record<string, unknown>;
    } catch {
      unreadable.push(`${where}: not a JSON audit record`);
      continue;
    }
    const { instance, seq, prev, hash } = record;
    if (typeof instance !== 'string' || typeof seq !== 'number' || typeof prev !== 'string' || typeof hash !== 'string') {
      unreadable.push(`${where}: not an audit record (instance, seq, prev, hash missing)`);
      continue;
    }
    let chain = chains.get(instance);
    if (!chain) {
      chain = { records: 0, lastSeq: 0, lastHash: GENESIS, gaps: 0, recent: new Map() };
      chains.set(instance, chain);
    }
    if (chain.problem) continue;
    const intact = recordHash(record) === hash;
    const at = `${where} (instance ${instance}, seq ${seq})`;
    // A repeat must run on, record by record, up to the last accepted one (as a resend does).
    const repeated = intact && seq <= chain.lastSeq && chain.recent.get(seq) === hash;
    if (chain.replay) {
      if (repeated && seq === chain.replay.next) {
        chain.replay = seq === chain.lastSeq ? undefined : { next: seq + 1, at: chain.replay.at };
      } else {
        chain.problem = inserted(chain.replay.at, chain.lastSeq);
      }
      continue;
    }
    if (repeated) {
      if (seq < chain.lastSeq) chain.replay = { next: seq + 1, at };
      continue;
    }
    if (!intact) {
      chain.problem = `${at} was altered: its content does not match its hash`;
    } else if (seq === chain.lastSeq + 1 && prev !== chain.lastHash) {
      chain.problem = `${at} does not follow seq ${chain.lastSeq}: its prev is not that record's hash (altered, inserted or replaced)`;
    } else if (seq > chain.lastSeq + 1) {
      chain.problem = `${at}: records ${chain.lastSeq + 1}..${seq - 1} are missing (removed, or reordered after it)`;
    } else if (seq <= chain.lastSeq) {
      chain.problem = inserted(at, chain.lastSeq);
    }
    if (chain.problem) continue;
    if (record.kind === 'gap') chain.gaps++;
    chain.records++;
    chain.lastSeq = seq;
    chain.lastHash = hash;
    chain.recent.set(seq, hash);
    if (chain.recent.size > RECENT) chain.recent.delete(seq - RECENT);
  }
  for (const c of chains.values()) if (c.replay && !c.problem) c.problem = inserted(c.replay.at, c.lastSeq);
  const instances = [...chains].map(([instance, c]): InstanceResult => ({
    instance, records: c.records, lastSeq: c.lastSeq, gaps: c.gaps, ok: c.problem === undefined,
    ...(c.problem ? { problem: c.problem } : {}),
  }));
  return { ok: unreadable.length === 0 && instances.every((i) => i.ok), instances, unreadable };
}

function inserted(at: string, lastSeq: number): string {
  return `${at} comes after seq ${lastSeq}: reordered or inserted`;
}
