// callFields reads what the policy and users layers put on the request context (decision, user, chain)
// and nothing else: the user's subject but not its claims, the decision as allow / deny / would-deny.
// seal writes the canonical JSON its hash covers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { createLogger } from '../log.ts';
import { RequestContext } from '../request-context.ts';
import { callFields, GENESIS, recordHash, seal, traceIdOf, type AuditFields } from './audit-record.ts';
import { canonicalJson } from './canonical-json.ts';

function context(): RequestContext {
  const req = { headers: { 'x-agentmesh-request-id': 'req-1' } } as unknown as IncomingMessage;
  const ctx = new RequestContext('inbound', req, createLogger('silent'));
  ctx.caller = 'spiffe://mesh.test/agent/planner';
  ctx.target = { kind: 'mcp', name: 'stats' };
  ctx.method = 'tools/call';
  ctx.tool = 'word_count';
  return ctx;
}

test('a call record holds the context fields, the decision and the user subject', () => {
  const ctx = context();
  Object.assign(ctx, {
    user: { subject: 'alice', claims: { role: 'analyst', email: 'alice@example.com' } },
    chain: ['spiffe://mesh.test/agent/writer', 'spiffe://mesh.test/agent/planner'],
    decision: { allowed: false, rule: 'analysts-count-words', mode: 'audit', reason: 'r', version: 3 },
  });
  const r = callFields(ctx, 200, traceIdOf(undefined, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'));
  assert.equal(r.requestId, 'req-1');
  assert.equal(r.caller, 'spiffe://mesh.test/agent/planner');
  assert.equal(r.target, 'mcp/stats');
  assert.equal(r.tool, 'word_count');
  assert.equal(r.user, 'alice');
  assert.deepEqual(r.chain, ['spiffe://mesh.test/agent/writer', 'spiffe://mesh.test/agent/planner']);
  assert.equal(r.decision, 'would-deny');
  assert.equal(r.rule, 'analysts-count-words');
  assert.equal(r.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.ok(!JSON.stringify(r).includes('alice@example.com'), 'claims stay out of the audit');
  Object.assign(ctx, { decision: { allowed: false, rule: undefined, mode: 'enforce' } });
  assert.equal(callFields(ctx, 403, undefined).decision, 'deny');
  Object.assign(ctx, { decision: { allowed: true, rule: 'x', mode: 'enforce' } });
  assert.equal(callFields(ctx, 200, undefined).decision, 'allow');
  Object.assign(ctx, { decision: undefined, user: undefined, chain: undefined });
  const plain = callFields(ctx, 200, undefined);
  assert.equal('decision' in plain || 'user' in plain || 'chain' in plain, false);
});

test('a sealed line is the canonical JSON its hash covers, plus the hash, and re-derives the same hash', () => {
  const fields: AuditFields = {
    kind: 'call', requestId: 'r-1', direction: 'outbound', caller: 'spiffe://m/agent/a', chain: ['spiffe://m/agent/z', 'spiffe://m/agent/a'],
    method: 'SendMessage', status: 200, durationMs: 1.5, taskId: undefined,
  } as unknown as AuditFields;
  const sealed = seal(fields, { instance: 'i1', seq: 7, time: '2026-01-01T00:00:00.000Z', prev: GENESIS });
  const parsed = JSON.parse(sealed.line) as Record<string, unknown>;
  assert.equal(parsed.hash, sealed.hash);
  assert.equal(recordHash(parsed), sealed.hash);
  const { hash: _h, ...body } = parsed;
  assert.equal(sealed.line, `${canonicalJson(body).slice(0, -1)},"hash":"${sealed.hash}"}`);
  assert.equal('taskId' in parsed, false, 'undefined members are left out');
  assert.deepEqual([parsed.v, parsed.instance, parsed.seq, parsed.prev], [1, 'i1', 7, GENESIS]);
});

test('a call record keeps the first 64 chain entries that are strings, each clipped to 512 characters', () => {
  const ctx = context();
  const long = 'x'.repeat(600);
  Object.assign(ctx, { chain: ['a', long, 'b'] });
  assert.deepEqual(callFields(ctx, 200, undefined).chain, ['a', 'x'.repeat(512), 'b']);
  const mixed: unknown[] = ['a', 7, long, null, 'b'];
  mixed[7] = 'after a hole';
  Object.assign(ctx, { chain: mixed });
  assert.deepEqual(callFields(ctx, 200, undefined).chain, ['a', 'x'.repeat(512), 'b', 'after a hole']);
  Object.assign(ctx, { chain: [...Array.from({ length: 63 }, (_, i) => `s${i}`), 1, 'beyond'] });
  assert.deepEqual(callFields(ctx, 200, undefined).chain, Array.from({ length: 63 }, (_, i) => `s${i}`));
  const shared = ['a', long];
  Object.assign(ctx, { chain: shared });
  callFields(ctx, 200, undefined);
  assert.deepEqual(shared, ['a', long], 'the context\'s chain is not changed');
});
