import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedLabel, targetLabel } from './metric-labels.ts';

test('targets are spelled like the resilience keys', () => {
  assert.equal(targetLabel({ kind: 'agent', name: 'echo' }), 'agent/echo');
  assert.equal(targetLabel({ kind: 'mcp', name: 'files' }), 'mcp/files');
});

test('a bounded label keeps the first values it sees and calls the rest other', () => {
  const label = new BoundedLabel(2);
  assert.equal(label.of('spiffe://t/agent/a'), 'spiffe://t/agent/a');
  assert.equal(label.of('spiffe://t/agent/b'), 'spiffe://t/agent/b');
  assert.equal(label.of('spiffe://t/agent/c'), 'other');
  assert.equal(label.of('spiffe://t/agent/a'), 'spiffe://t/agent/a');
});
