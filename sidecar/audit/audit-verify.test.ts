// verifyAudit names the first record that was altered, removed, inserted or reordered, per instance;
// an untouched chain, a re-delivered duplicate and interleaved instances verify.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GENESIS, seal, type AuditFields } from './audit-record.ts';
import { verifyAudit } from './audit-verify.ts';

function chain(instance: string, n: number): string[] {
  let prev = GENESIS;
  const out: string[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const fields: AuditFields = { kind: 'call', requestId: `${instance}-${seq}`, direction: 'inbound', method: 'GetTask', status: 200, durationMs: 2 };
    const sealed = seal(fields, { instance, seq, time: '2026-01-01T00:00:00.000Z', prev });
    prev = sealed.hash;
    out.push(sealed.line);
  }
  return out;
}
const at = (texts: string[]) => texts.map((text, i) => ({ text, where: `line ${i + 1}` }));
const problem = (texts: string[]) => verifyAudit(at(texts)).instances.find((i) => !i.ok)?.problem ?? '';

test('untouched, interleaved and re-delivered records verify', () => {
  const a = chain('a', 5);
  const b = chain('b', 3);
  const mixed = [a[0], b[0], a[1], a[1], b[1], a[2], a[3], b[2], a[4]].map(String);
  const result = verifyAudit(at(mixed));
  assert.equal(result.ok, true);
  assert.deepEqual(result.instances.map((i) => [i.instance, i.records]), [['a', 5], ['b', 3]]);
});

test('altered, removed, inserted and reordered records are named', () => {
  const a = chain('a', 6);
  const altered = [...a];
  altered[2] = String(altered[2]).replace('"status":200', '"status":500');
  assert.match(problem(altered), /^line 3 \(instance a, seq 3\) was altered/);
  assert.match(problem([...a.slice(0, 3), ...a.slice(4)]), /^line 4 \(instance a, seq 5\): records 4\.\.4 are missing/);
  const forged = JSON.parse(String(a[3])) as Record<string, unknown>;
  const other = chain('a', 6)[0];
  assert.ok(other);
  assert.match(problem([...a.slice(0, 3), other, ...a.slice(3)]), /^line 4 \(instance a, seq 1\) comes after seq 3/);
  assert.match(problem([a[0], a[2], a[1], ...a.slice(3)].map(String)), /^line 2 \(instance a, seq 3\): records 2\.\.2 are missing/);
  // A record re-sealed with a valid hash but a forged prev: named by the broken link.
  const { hash: _h, v: _v, instance: _i, seq: _s, time, prev: _p, ...body } = forged;
  const resealed = seal({ ...(body as unknown as AuditFields), status: 201 } as AuditFields, { instance: 'a', seq: 4, time: String(time), prev: GENESIS });
  assert.match(problem([...a.slice(0, 3), resealed.line, ...a.slice(4)]), /^line 4 \(instance a, seq 4\) does not follow seq 3/);
  assert.match(problem(['not json', ...a]) || verifyAudit(at(['not json', ...a])).unreadable.join(), /line 1: not a JSON audit record/);
});

test('a batch re-sent after a lost ack, cut differently, verifies; a changed copy does not', () => {
  const a = chain('a', 8);
  // Stored: 1..3 (ack lost), then the resend 1..8 in one batch.
  const resent = [...a.slice(0, 3), ...a];
  const result = verifyAudit(at(resent));
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.deepEqual(result.instances.map((i) => [i.records, i.lastSeq]), [[8, 8]]);
  const changed = [...a.slice(0, 3), String(a[0]).replace('"status":200', '"status":500'), ...a.slice(1)];
  assert.match(problem(changed), /^line 4 \(instance a, seq 1\) was altered/);
});

test('a copy of earlier records that does not run on to the last one is named as inserted', () => {
  const a = chain('a', 6);
  assert.match(problem([...a.slice(0, 4), String(a[1]), ...a.slice(4)]), /^line 5 \(instance a, seq 2\) comes after seq 4/);
  assert.match(problem([...a, String(a[2]), String(a[3])]), /^line 7 \(instance a, seq 3\) comes after seq 6/);
});
