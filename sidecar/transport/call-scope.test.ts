// CallScope under fake time: the deadline, the idle gap that every SSE chunk restarts, finish() stopping
// both; and, over a real HTTP connection, a caller that goes away.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { once } from 'node:events';
import { isMeshError, type MeshError } from '../../sdk/errors.ts';
import { CallScope } from './call-scope.ts';

/** A response with no connection behind it: the scope only listens for its 'close'. */
function detachedResponse(): ServerResponse {
  return new ServerResponse(new IncomingMessage(new Socket()));
}

/** Read through a call, so type narrowing from an earlier assertion does not stick across fake time. */
const endedOf = (scope: CallScope): MeshError | undefined => scope.ended;

function scoped(t: TestContext, ms: number | undefined) {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 5_000_000 });
  const res = detachedResponse();
  const scope = new CallScope(res, ms, "agent 'x'");
  const aborts: MeshError[] = [];
  scope.attach((reason) => aborts.push(reason));
  t.after(() => scope.finish());
  return { res, scope, aborts };
}

describe('CallScope', () => {
  test('the deadline ends the call with UPSTREAM_TIMEOUT and aborts the exchange once', (t) => {
    const { scope, aborts } = scoped(t, 1000);
    const signal = scope.signal;
    t.mock.timers.tick(999);
    assert.equal(scope.ended, undefined);
    assert.equal(signal.aborted, false);
    t.mock.timers.tick(1);
    const ended = endedOf(scope);
    assert.ok(isMeshError(ended, 'UPSTREAM_TIMEOUT'));
    assert.equal(ended.details?.timeoutMs, 1000);
    assert.match(ended.message, /1000 ms .*agent 'x'/);
    assert.equal(aborts.length, 1);
    assert.equal(aborts[0], ended);
    assert.equal(signal.reason, ended);
    // A later attach (the next attempt) is aborted at once.
    let late: MeshError | undefined;
    scope.attach((reason) => { late = reason; });
    assert.equal(late, scope.ended);
  });

  test('each SSE chunk starts a new idle gap', (t) => {
    const { scope } = scoped(t, 1000);
    for (let i = 0; i < 5; i++) {
      t.mock.timers.tick(900);
      scope.restart();
    }
    assert.equal(scope.ended, undefined, '4.5 s in, but no gap reached 1 s');
    t.mock.timers.tick(999);
    assert.equal(scope.ended, undefined);
    t.mock.timers.tick(1);
    assert.ok(isMeshError(scope.ended, 'UPSTREAM_TIMEOUT'));
  });

  test('finish stops the deadline and the watch on the caller; twice is fine', (t) => {
    const { res, scope, aborts } = scoped(t, 1000);
    const listeners = res.listenerCount('close');
    scope.finish();
    scope.finish();
    assert.equal(res.listenerCount('close'), listeners - 1);
    t.mock.timers.tick(5000);
    res.emit('close');
    assert.equal(scope.ended, undefined);
    assert.equal(aborts.length, 0);
  });

  test('without a deadline only the caller ends the call', (t) => {
    const { res, scope, aborts } = scoped(t, undefined);
    t.mock.timers.tick(3_600_000);
    assert.equal(scope.ended, undefined);
    res.emit('close');
    assert.ok(isMeshError(scope.ended, 'ABORTED'));
    assert.equal(aborts.length, 1);
  });

  test('a response already destroyed ends the scope at once', () => {
    const res = detachedResponse();
    res.destroy();
    Object.defineProperty(res, 'destroyed', { value: true });
    const scope = new CallScope(res, 1000, "agent 'x'");
    assert.ok(isMeshError(scope.ended, 'ABORTED'));
    assert.equal(scope.signal.aborted, true);
    scope.finish();
  });

  test('a caller that disconnects aborts the call in flight (real connection)', async (t) => {
    const ended = new Promise<MeshError>((resolve) => {
      const server = createServer((_req, res) => {
        const scope = new CallScope(res, 60_000, "agent 'x'");
        scope.attach((reason) => { scope.finish(); resolve(reason); });
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': open\n\n');
      });
      t.after(() => server.close());
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        if (address === null || typeof address === 'string') throw new Error('no port');
        const client = new AbortController();
        fetch(`http://127.0.0.1:${address.port}/`, { signal: client.signal })
          .then(async (r) => { const reader = r.body?.getReader(); await reader?.read(); client.abort(); })
          .catch(() => undefined);
      });
    });
    const reason = await ended;
    assert.ok(isMeshError(reason, 'ABORTED'));
    assert.match(reason.message, /caller closed the connection/);
  });
});
