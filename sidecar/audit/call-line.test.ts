// The direct writer of call lines gives byte for byte the line and hash of the general way (canonicalJson
// and a SHA-256 over it), over a chain of many varied records, and gives up on anything it does not expect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { GENESIS, recordHash, seal, sealAny, type AuditFields, type CallFields } from './audit-record.ts';
import { sealCall } from './call-line.ts';
import { canonicalJson } from './canonical-json.ts';

const STRINGS = [
  '', 'a', 'spiffe://mesh.test/agent/planner', 'say "hi"', 'back\\slash', 'tab\there', 'line\nbreak', '\r\b\f',
  '\u0000nul', 'unit\u001fsep', 'del\u007f', 'café', '中文', 'emoji 😀 pair', 'lone \ud800 high', 'lone \udfff low',
  'reversed \udc00\ud800', '\u2028\u2029', '<script>&amp;</script>', '\'single\'', 'x'.repeat(512),
  `${'é'.repeat(300)}"${'\u0001'.repeat(200)}`,
];
const NUMBERS = [0, -0, 1, 200, 0.001, 1e21, 1e-7, 123456789.125, 2 ** 53, -1.5, 5e-324, 1.7976931348623157e308];
const OPTIONAL = ['caller', 'user', 'chain', 'target', 'taskId', 'contextId', 'tool', 'decision', 'rule', 'traceId'] as const;

/** A small deterministic generator, so a failure names a record that comes back on the next run. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

function varied(rand: () => number, i: number): CallFields {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
  const fields: Record<string, unknown> = {
    kind: 'call', requestId: i % 3 === 0 ? pick(STRINGS) : `req-${i}`, direction: i % 2 ? 'inbound' : 'outbound',
    method: pick(STRINGS), status: pick(NUMBERS), durationMs: pick(NUMBERS),
  };
  // Each optional member absent, present, or present as undefined (left out, as JSON.stringify does).
  for (const key of OPTIONAL) {
    const r = rand();
    if (r < 0.3) continue;
    if (r < 0.4) fields[key] = undefined;
    else if (key === 'chain') fields[key] = Array.from({ length: Math.floor(rand() * 4) }, () => pick(STRINGS));
    else if (key === 'decision') fields[key] = pick(['allow', 'deny', 'would-deny']);
    else fields[key] = pick(STRINGS);
  }
  // Insertion order varies too: the line must not depend on it.
  const keys = Object.keys(fields);
  if (i % 2) keys.reverse();
  return Object.fromEntries(keys.map((k) => [k, fields[k]])) as unknown as CallFields;
}

/** What audit verify re-derives: canonical JSON of fields plus the chain's members, and SHA-256 over it. */
function expected(fields: AuditFields, at: { instance: string; seq: number; time: string; prev: string }): { line: string; hash: string } {
  const body = canonicalJson({ ...fields, ...at, v: 1 });
  const hash = createHash('sha256').update(body).digest('hex');
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}`, hash };
}

test('call lines written directly equal the canonical JSON and hash, over a chain of varied records', () => {
  const rand = random(16);
  let prev = GENESIS;
  for (let i = 1; i <= 3000; i++) {
    const fields = varied(rand, i);
    const at = { instance: i % 7 ? 'sidecar-1' : STRINGS[i % STRINGS.length] ?? '', seq: i, time: new Date(i * 1e9).toISOString(), prev };
    const direct = sealCall(fields, at);
    assert.ok(direct, `record ${i} took the direct way`);
    const want = expected(fields, at);
    assert.equal(direct.line, want.line, `record ${i}`);
    assert.equal(direct.hash, want.hash, `record ${i}`);
    assert.deepEqual(seal(fields, at), want);
    assert.deepEqual(sealAny(fields, at), want);
    assert.equal(recordHash(JSON.parse(direct.line) as Record<string, unknown>), direct.hash);
    prev = direct.hash;
  }
});

test('records the direct way does not expect take the general way, with the same result', () => {
  const at = { instance: 'i', seq: 1, time: '2026-01-01T00:00:00.000Z', prev: GENESIS };
  const base: CallFields = { kind: 'call', requestId: 'r', direction: 'inbound', method: 'SendMessage', status: 200, durationMs: 1.5 };
  const odd: unknown[] = [
    { ...base, extra: 'x' }, { ...base, instance: 'other' }, { ...base, v: 2 }, { ...base, hash: 'h' },
    { ...base, durationMs: Number.NaN }, { ...base, status: Number.POSITIVE_INFINITY }, { ...base, chain: ['a', 1] },
    { ...base, chain: 'a' }, { ...base, chain: [{ b: 1, a: 2 }] }, { ...base, caller: 42 }, { ...base, user: { subject: 'u' } },
    Object.assign(Object.create(null) as object, base),
    Object.defineProperty({ ...base }, 'tool', { value: 'hidden', enumerable: false }),
    { ...base, chain: Array.from({ length: 64 }, () => '\u0001'.repeat(512)) },
  ];
  for (const [n, fields] of odd.entries()) {
    const f = fields as CallFields;
    assert.equal(sealCall(f, at), undefined, `odd record ${n}`);
    assert.deepEqual(seal(f, at), sealAny(f, at), `odd record ${n}`);
  }
  assert.equal(sealCall(base, { ...at, seq: Number.NaN }), undefined);
  assert.equal(sealCall(base, { ...at, prev: undefined as unknown as string }), undefined);
});
