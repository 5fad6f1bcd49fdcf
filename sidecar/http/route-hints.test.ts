// The trailing-slash mistake on /a2a/{agent} is answered with a hint; other paths get none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { routeHint } from './route-hints.ts';

test('a path that lost its agent name gets the trailing-slash hint', () => {
  assert.match(routeHint('/a2a/.well-known/agent-card.json'), /trailing slash/);
  assert.match(routeHint('/a2a/message:send'), /trailing slash/);
  assert.match(routeHint('/a2a/'), /agent name is missing/);
  assert.equal(routeHint('/nothing'), '');
});
