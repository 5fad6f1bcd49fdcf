// AuditLog: records are chained and stored in order; a failing sink sends them to the disk spool and
// they follow in order once it recovers; with memory and spool full, a gap record counts the lost ones;
// a reopened instance continues its chain. Real files; the sink that fails on demand stands in for NATS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from './audit-log.ts';
import type { AuditFields } from './audit-record.ts';
import { fileSink, packLines, type AuditSink } from './audit-sink.ts';
import { AuditSpool } from './audit-spool.ts';
import { verifyAudit } from './audit-verify.ts';

const call = (i: number): AuditFields => ({ kind: 'call', requestId: `r${i}`, direction: 'outbound', method: 'SendMessage', status: 200, durationMs: 1 });
const options = { maxPending: 50, batchSize: 8, flushIntervalMs: 1, retryMs: 10 };

/** A sink that stores into an array, or stores nothing while `down`. */
function switchableSink(): AuditSink & { stored: string[]; down: boolean } {
  const sink = {
    stored: [] as string[], down: false, describe: 'memory',
    async write(lines: readonly string[]) {
      if (sink.down) return 0;
      sink.stored.push(...lines);
      return lines.length;
    },
    async last() { return sink.stored.at(-1); },
    async close() { /* nothing */ },
  };
  return sink;
}

function lines(texts: string[]) {
  return texts.map((text, i) => ({ text, where: `line ${i + 1}` }));
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000; // a bound, not a wait: generous for a loaded CI machine
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('file sink: a chain that verifies, continued by a reopened instance', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'audit-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const first = await AuditLog.open({ instance: 'i1', sink: await fileSink(dir, 'i1'), ...options });
  for (let i = 0; i < 20; i++) first.record(call(i));
  await first.close();
  const second = await AuditLog.open({ instance: 'i1', sink: await fileSink(dir, 'i1'), ...options });
  second.record(call(20));
  await second.close();
  const text = readFileSync(join(dir, 'i1.jsonl'), 'utf8').split('\n').filter(Boolean);
  assert.equal(text.length, 21);
  const result = verifyAudit(lines(text));
  assert.deepEqual(result.instances, [{ instance: 'i1', records: 21, lastSeq: 21, gaps: 0, ok: true }]);
  assert.deepEqual(text.map((l) => (JSON.parse(l) as { requestId: string }).requestId), Array.from({ length: 21 }, (_, i) => `r${i}`));
});

test('a failing sink: records wait in the spool on disk and follow in order once it is back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'audit-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sink = switchableSink();
  const spool = await AuditSpool.open(join(dir, 'i2.spool.jsonl'), 1024 * 1024);
  const log = await AuditLog.open({ instance: 'i2', sink, spool, ...options });
  log.record(call(0));
  await log.flush();
  sink.down = true;
  for (let i = 1; i <= 200; i++) {
    log.record(call(i));
    if (i % 10 === 0) await until(() => log.stats().pending < 40); // memory stays bounded: the rest is on disk
  }
  await until(() => log.stats().pending === 0);
  assert.ok(log.stats().spooledBytes > 0, 'records were spooled');
  assert.equal(sink.stored.length, 1);
  sink.down = false;
  await until(() => sink.stored.length === 201);
  await log.close();
  assert.equal(log.stats().lost, 0);
  assert.equal(readFileSync(join(dir, 'i2.spool.jsonl'), 'utf8'), '', 'the spool is emptied');
  assert.ok(verifyAudit(lines(sink.stored)).ok);
  assert.deepEqual(sink.stored.map((l) => (JSON.parse(l) as { seq: number }).seq), Array.from({ length: 201 }, (_, i) => i + 1));
});

test('memory and spool full: lost records are counted and a gap record says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'audit-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sink = switchableSink();
  sink.down = true;
  const spool = await AuditSpool.open(join(dir, 'i3.spool.jsonl'), 2000); // a handful of records
  const log = await AuditLog.open({ instance: 'i3', sink, spool, ...options, maxPending: 10 });
  for (let i = 0; i < 300; i++) {
    log.record(call(i));
    if (i % 5 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await until(() => log.stats().lost > 0);
  sink.down = false;
  await until(() => sink.stored.some((l) => l.includes('"kind":"gap"')));
  log.record(call(999));
  await until(() => sink.stored.some((l) => l.includes('"r999"')));
  await log.close();
  const result = verifyAudit(lines(sink.stored));
  assert.ok(result.ok, JSON.stringify(result));
  // Room may come and go while the 300 are recorded, so there may be more than one loss period (one gap each).
  const gaps = sink.stored.map((l) => JSON.parse(l) as { kind: string; lost?: number }).filter((r) => r.kind === 'gap');
  assert.ok(gaps.length > 0 && gaps.every((g) => (g.lost ?? 0) > 0), 'gap records count the lost records');
  assert.equal(result.instances[0]?.gaps, gaps.length);
  const lost = gaps.reduce((n, g) => n + (g.lost ?? 0), 0);
  assert.equal(sink.stored.length - gaps.length + lost, 301, 'stored + lost = recorded');
});

test('a spool whose last line was cut short by a crash: the torn line is dropped, the rest replays and new records follow', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'audit-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'i4.spool.jsonl');
  const sink = switchableSink();
  sink.down = true;
  const first = await AuditLog.open({ instance: 'i4', sink, spool: await AuditSpool.open(path, 1024 * 1024), ...options });
  for (let i = 0; i < 5; i++) first.record(call(i));
  await first.close(); // the sink is down: all five stay in the spool
  const whole = readFileSync(path, 'utf8');
  assert.equal(whole.split('\n').filter(Boolean).length, 5);
  writeFileSync(path, `${whole}{"v":1,"instance":"i4","seq":6,"ti`); // the crash: half a line at the end
  sink.down = false;
  const second = await AuditLog.open({ instance: 'i4', sink, spool: await AuditSpool.open(path, 1024 * 1024), ...options });
  second.record(call(5));
  await until(() => sink.stored.length === 6);
  await second.close();
  assert.deepEqual(sink.stored.map((l) => (JSON.parse(l) as { seq: number }).seq), [1, 2, 3, 4, 5, 6]);
  assert.ok(verifyAudit(lines(sink.stored)).ok);
  assert.equal(readFileSync(path, 'utf8'), '');
});

test('a flush asked while the pump is busy spooling gets its own drain (it was dropped: the defect of issue 13)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'audit-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const real = await AuditSpool.open(join(dir, 'i5.spool.jsonl'), 1024 * 1024);
  let release: () => void = () => undefined;
  let held = false;
  // The real spool, whose appends wait for `release` once `hold` is set: the pump is then busy spooling.
  let hold = false;
  const spool = {
    path: real.path, maxBytes: real.maxBytes,
    get pending() { return real.pending; },
    async append(l: readonly string[]) {
      if (hold) {
        held = true;
        await new Promise<void>((resolve) => { release = resolve; });
      }
      return real.append(l);
    },
    peek: (max: number) => real.peek(max), consume: (n: number) => real.consume(n), lastLine: () => real.lastLine(), close: () => real.close(),
  } as unknown as AuditSpool;
  const sink = switchableSink();
  sink.down = true;
  // No retry timer fires during the test: only the flush can send.
  const log = await AuditLog.open({ instance: 'i5', sink, spool, ...options, retryMs: 600_000 });
  log.record(call(0));
  await until(() => log.stats().pending === 0 && log.stats().spooledBytes > 0); // failed once: the sink counts as failing
  hold = true;
  log.record(call(1)); // the pump moves it to the spool, and waits there
  await until(() => held);
  sink.down = false;
  const flushed = log.flush();
  release();
  await flushed;
  assert.deepEqual(sink.stored.map((l) => (JSON.parse(l) as { seq: number }).seq), [1, 2], 'the flush resolved before the records it waited for were sent');
  await log.close();
});

test('packLines: consecutive lines in as few messages as fit the byte limit, in order', () => {
  const lines = ['a'.repeat(10), 'b'.repeat(10), 'c'.repeat(10), 'd'.repeat(40)];
  assert.deepEqual(packLines(lines, 33).map((m) => [m.data, m.last, m.count]), [
    [`${'a'.repeat(10)}\n${'b'.repeat(10)}\n${'c'.repeat(10)}`, 'c'.repeat(10), 3],
    ['d'.repeat(40), 'd'.repeat(40), 1],
  ]);
  assert.deepEqual(packLines(lines, 22).map((m) => m.count), [2, 1, 1]);
  assert.deepEqual(packLines([], 100), []);
});
