import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sniffTaskId } from './task-affinity.ts';

test('the task id is read from a JSON-RPC task, a REST task update or an SSE event; an answer without one gives none', () => {
  assert.equal(sniffTaskId(Buffer.from('{"jsonrpc":"2.0","id":1,"result":{"task": {"id":"t-1","status":{}}}}')), 't-1');
  assert.equal(sniffTaskId(Buffer.from('data: {"jsonrpc":"2.0","id":1,"result":{"statusUpdate":{"taskId":"t-2","contextId":"c"}}}\n\n')), 't-2');
  assert.equal(sniffTaskId(Buffer.from('{"statusUpdate":{"taskId" : "t-3"}}')), 't-3');
  assert.equal(sniffTaskId(Buffer.from('{"jsonrpc":"2.0","id":1,"result":{"message":{"messageId":"m","parts":[{"text":"ünïcode task"}]}}}')), undefined);
  assert.equal(sniffTaskId(Buffer.from('{"result":{"tasks":[]}}')), undefined, '"task followed by something else');
  // Only the first 64 KiB are looked at.
  assert.equal(sniffTaskId(Buffer.concat([Buffer.alloc(64 * 1024, 0x20), Buffer.from('{"taskId":"late"}')])), undefined);
  assert.equal(sniffTaskId(Buffer.concat([Buffer.alloc(64 * 1024 - 20, 0x20), Buffer.from('{"taskId":"edge"}')])), 'edge');
});
