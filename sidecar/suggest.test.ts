// "Did you mean": typos find their word, unrelated words find nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closest, didYouMean, distance } from './suggest.ts';

test('edit distance counts substitutions, insertions, deletions and swaps', () => {
  assert.equal(distance('agents', 'agents'), 0);
  assert.equal(distance('agnets', 'agents'), 1);
  assert.equal(distance('agent', 'agents'), 1);
  assert.equal(distance('tools', 'tols'), 1);
});

test('the closest candidate when it is close enough, else none', () => {
  assert.equal(closest('agnets', ['agents', 'tools', 'call']), 'agents');
  assert.equal(closest('AGENTMESH_REGISTRY_TTTL', ['AGENTMESH_REGISTRY_TTL', 'AGENTMESH_URL']), 'AGENTMESH_REGISTRY_TTL');
  assert.equal(closest('cooking', ['summarize', 'translate']), undefined);
  assert.equal(closest('agents', ['agents']), undefined, 'an exact match is not a suggestion');
  assert.equal(didYouMean('writr', ['writer']), " (did you mean 'writer'?)");
  assert.equal(didYouMean('x', []), '');
});
