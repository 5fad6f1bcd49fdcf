// SessionOwners: only the opener passes, unknown and foreign sessions look the same, bounds hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionOwners } from './session-owners.ts';
import { isMeshError } from '../../sdk/index.ts';

const notFound = (err: unknown) => isMeshError(err) && err.code === 'MCP_SESSION_NOT_FOUND';

test('the opener passes; another identity and an unknown session get MCP_SESSION_NOT_FOUND', () => {
  const owners = new SessionOwners();
  owners.record('files', 's1', 'spiffe://td/agent/a');
  owners.check('files', 's1', 'spiffe://td/agent/a');
  assert.throws(() => owners.check('files', 's1', 'spiffe://td/agent/b'), notFound);
  assert.throws(() => owners.check('other', 's1', 'spiffe://td/agent/a'), notFound);
  assert.throws(() => owners.check('files', 'nope', 'spiffe://td/agent/a'), notFound);
  owners.record('files', 's1', 'spiffe://td/agent/b'); // a second claim never changes the owner
  assert.throws(() => owners.check('files', 's1', 'spiffe://td/agent/b'), notFound);
  owners.drop('files', 's1');
  assert.throws(() => owners.check('files', 's1', 'spiffe://td/agent/a'), notFound);
  assert.equal(owners.size, 0);
});

test('bounded in all and per caller: a flood from one identity evicts only its own sessions', () => {
  const owners = new SessionOwners({ max: 10, maxPerCaller: 3 });
  owners.record('s', 'victim', 'spiffe://td/agent/v');
  for (let i = 0; i < 100; i++) owners.record('s', `f${i}`, 'spiffe://td/agent/flood');
  owners.check('s', 'victim', 'spiffe://td/agent/v');
  owners.check('s', 'f99', 'spiffe://td/agent/flood');
  assert.throws(() => owners.check('s', 'f0', 'spiffe://td/agent/flood'), notFound);
  assert.equal(owners.size, 4);
  for (let i = 0; i < 20; i++) owners.record('s', `x${i}`, `spiffe://td/agent/n${i}`);
  assert.equal(owners.size, 10);
});
