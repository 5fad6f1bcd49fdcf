// Unit tests for registry values: validated on write and on read, with errors that name what is wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMeshError } from '../sdk/index.ts';
import { decodeRecord, encodeRecord, validateRecord } from './codec.ts';
import type { RegistryRecord } from './record.ts';
import { storedAgentRecord } from '../test/support/registry-records.ts';

const invalid = (pattern: RegExp) => (err: unknown): boolean => isMeshError(err, 'REGISTRY_RECORD_INVALID') && pattern.test(err.message);

test('a record survives a round trip; unknown card fields pass through', () => {
  const record = storedAgentRecord('rt', 'i1');
  const withExtension = { ...record, card: { ...record.card, 'x-vendor': { a: 1 } } };
  assert.deepEqual(decodeRecord('agents.rt.i1', encodeRecord(withExtension)), withExtension);
});

test('reads reject non-JSON, records that fail the schema, and records stored under another key', () => {
  assert.throws(() => decodeRecord('agents.a.i1', '{"kind":'), invalid(/not JSON/));
  assert.throws(() => decodeRecord('agents.a.i1', JSON.stringify({ kind: 'agent', name: 'a' })), invalid(/instance/));
  assert.throws(() => decodeRecord('agents.a.i1', JSON.stringify(storedAgentRecord('b', 'i1'))), invalid(/describes 'agents\.b\.i1'/));
});

test('writes reject invalid records before anything is stored', () => {
  const record = storedAgentRecord('w', 'i1');
  assert.throws(() => validateRecord({ ...record, endpoint: 'http://127.0.0.1:1' }), invalid(/endpoint/));
  assert.throws(() => validateRecord({ ...record, name: 'has.dot' }), invalid(/name/));
  assert.throws(() => validateRecord({ ...record, identity: 'agent-w' }), invalid(/identity/));
  assert.throws(() => encodeRecord({ ...record, kind: 'mcp' } as unknown as RegistryRecord), invalid(/tools/));
});
