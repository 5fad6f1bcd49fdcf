// Which A2A answers count against an instance: 5xx always; 404 on JSON-RPC and on REST methods not
// addressed to one task; a REST task 404 only when the peer sidecar answered it itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_HEADER } from '../../sdk/mesh-headers.ts';
import { a2aFault } from './instance-fault.ts';
import { A2A_METHODS } from './methods.ts';

const method = (name: string) => A2A_METHODS.find((m) => m.name === name);

test('a2aFault', () => {
  const rpc = a2aFault(false, method('GetTask'));
  assert.equal(rpc(404, {}), true, 'JSON-RPC answers a missing task with 200 and an error: a 404 is a missing route');
  assert.equal(rpc(500, {}), true);
  assert.equal(rpc(200, {}), false);
  assert.equal(rpc(429, {}), false, '429 is a busy instance, handled by its own penalty');
  assert.equal(a2aFault(true, method('SendMessage'))(404, {}), true, 'REST message:send must exist');
  const getTask = a2aFault(true, method('GetTask'));
  assert.equal(getTask(404, {}), false, 'REST GetTask 404: the task does not exist, the agent is right');
  assert.equal(getTask(404, { [ERROR_HEADER]: 'AGENT_NOT_FOUND' }), true, 'the peer sidecar does not serve the agent');
  assert.equal(getTask(503, {}), true);
  assert.equal(a2aFault(true, undefined)(404, {}), true);
});
