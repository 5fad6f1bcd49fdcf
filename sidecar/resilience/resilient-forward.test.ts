// resilientForward against real HTTP instances on 127.0.0.1 (port 0): which failures move a call to another
// instance, read-only retries within the budget, the upstream's Retry-After (under fake time), and a
// SendMessage whose connection broke resent only to the same instance (and OUTCOME_UNKNOWN when that
// instance is gone), and fast faults counted against the instance that gives them.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setImmediate as turn } from 'node:timers/promises';
import { Agent } from 'undici';
import { Balancer } from './balancer.ts';
import { RETRIED_HEADER } from '../../sdk/mesh-headers.ts';
import { resilientForward, type Instance, type ResilientCall } from './resilient-forward.ts';
import { RetryBudget } from './retry-budget.ts';

type Behaviour = (req: IncomingMessage, res: ServerResponse, hit: number) => void;

interface TestInstance extends Instance { hits: number }

async function listen(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => { server.closeAllConnections(); server.close(); });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A real upstream instance that answers each request with `behave` after reading its body. */
async function instance(t: TestContext, name: string, behave: Behaviour): Promise<TestInstance> {
  const record: TestInstance = { instance: name, endpoint: '', identity: `spiffe://t.test/agent/${name}`, hits: 0 };
  record.endpoint = await listen(t, (req, res) => {
    const hit = ++record.hits;
    req.resume();
    req.once('end', () => behave(req, res, hit));
  });
  return record;
}

/** An endpoint nothing listens on: connections are refused, so the request is never sent. */
async function refusing(name: string): Promise<TestInstance> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return { instance: name, endpoint: `http://127.0.0.1:${port}`, identity: `spiffe://t.test/agent/${name}`, hits: 0 };
}

const answer = (status: number, headers: Record<string, string> = {}): Behaviour => (_req, res) => {
  res.writeHead(status, { 'content-type': 'text/plain', ...headers }).end(`${status}`);
};

interface Options {
  method?: string;
  idempotent?: boolean;
  resendOnLoss?: boolean;
  budget?: RetryBudget;
  maxAttempts?: number;
  preferred?: string | null;
  timeoutMs?: number;
  messageId?: string;
  isFault?: ResilientCall<TestInstance>['isFault'];
}

/** A front server whose every request goes through resilientForward to `instances`; returns a caller. */
async function front(t: TestContext, instances: TestInstance[], options: Options = {}) {
  const dispatcher = new Agent();
  t.after(() => dispatcher.close());
  const balancer = new Balancer({ window: 10_000, volumeThreshold: 100, errorThresholdPercentage: 99, consecutiveFailures: 100, resetTimeout: 30_000, maxResetTimeout: 30_000 }, () => undefined);
  t.after(() => balancer.close());
  const retries: string[] = [];
  const served: string[] = [];
  const url = await listen(t, (req, res) => {
    const call: ResilientCall<TestInstance> = {
      candidates: () => instances,
      preferred: options.preferred === null ? undefined : options.preferred ?? instances[0]?.instance,
      ...(options.messageId ? { messageId: options.messageId } : {}),
      ...(options.isFault ? { isFault: options.isFault } : {}),
      idempotent: options.idempotent ?? false,
      resendOnLoss: options.resendOnLoss ?? false,
      retry: { maxAttempts: options.maxAttempts ?? 3, backoff: 0, maxBackoff: 0 },
      balancer,
      budget: options.budget ?? new RetryBudget(0.2, 10),
      dispatcher: () => dispatcher,
      request: { method: req.method ?? 'GET', path: '/a2a/x', headers: { 'content-type': 'application/json' }, ...(req.method === 'POST' ? { body: Buffer.from('{}') } : {}), ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) },
      target: "agent 'x'",
      onRetry: (reason) => retries.push(reason),
    };
    resilientForward(call, res).then((record) => served.push(record.instance), (err: unknown) => {
      res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ code: (err as { code?: string }).code, message: (err as Error).message, details: (err as { details?: unknown }).details }));
    });
  });
  const call = async () => {
    const r = await fetch(`${url}/`, { method: options.method ?? 'GET', ...(options.method === 'POST' ? { body: '{}' } : {}) });
    return { status: r.status, retried: r.headers.get(RETRIED_HEADER), retryAfter: r.headers.get('retry-after'), body: await r.text() };
  };
  return { call, retries, served };
}

/** A budget that allows no retry at all (no starting allowance, no refill, no deposits). */
const emptyBudget = () => new RetryBudget(0, 0);

describe('resilientForward', () => {
  test('a refused connection moves to another instance, even a POST and with the budget spent', async (t) => {
    const a = await refusing('a');
    const b = await instance(t, 'b', answer(200));
    const { call, retries, served } = await front(t, [a, b], { method: 'POST', budget: emptyBudget() });
    const r = await call();
    assert.equal(r.status, 200);
    assert.equal(b.hits, 1);
    assert.deepEqual(retries, ['ECONNREFUSED']);
    assert.deepEqual(served, ['b']);
  });

  test('a 503 to a request that may change state is not retried: the caller gets the answer', async (t) => {
    const a = await instance(t, 'a', answer(503));
    const b = await instance(t, 'b', answer(200));
    const { call, retries } = await front(t, [a, b], { method: 'POST', idempotent: false });
    const r = await call();
    assert.equal(r.status, 503);
    assert.equal(r.body, '503');
    assert.equal(b.hits, 0);
    assert.deepEqual(retries, []);
  });

  test('a read-only request retries a 503 on another instance, within the budget', async (t) => {
    const a = await instance(t, 'a', answer(503));
    const b = await instance(t, 'b', answer(200));
    const { call, retries } = await front(t, [a, b], { idempotent: true });
    const r = await call();
    assert.equal(r.status, 200);
    assert.equal(r.retried, '1');
    assert.deepEqual([a.hits, b.hits], [1, 1]);
    assert.deepEqual(retries, ['HTTP 503']);
  });

  test('with the budget spent a read-only request is not retried', async (t) => {
    const a = await instance(t, 'a', answer(503));
    const b = await instance(t, 'b', answer(200));
    const { call } = await front(t, [a, b], { idempotent: true, budget: emptyBudget() });
    assert.equal((await call()).status, 503);
    assert.equal(b.hits, 0);
  });

  test('the budget bounds the retries whatever maxAttempts allows', async (t) => {
    const all = [await instance(t, 'a', answer(502)), await instance(t, 'b', answer(502)), await instance(t, 'c', answer(502))];
    const { call, retries } = await front(t, all, { idempotent: true, maxAttempts: 6, budget: new RetryBudget(0, 1) });
    const r = await call();
    assert.equal(r.status, 502);
    assert.equal(r.retried, '1');
    assert.equal(all.reduce((n, i) => n + i.hits, 0), 2, 'one attempt and the one retry the budget holds');
    assert.deepEqual(retries, ['HTTP 502']);
  });

  test('an answer from a hop that already retried is not retried again', async (t) => {
    const a = await instance(t, 'a', answer(503, { [RETRIED_HEADER]: '2' }));
    const b = await instance(t, 'b', answer(200));
    const { call } = await front(t, [a, b], { idempotent: true });
    assert.equal((await call()).status, 503);
    assert.equal(b.hits, 0);
  });

  test('a SendMessage whose connection broke is resent to the same instance only', async (t) => {
    const lose: Behaviour = (req, res, hit) => (hit === 1 ? req.socket.destroy() : answer(200)(req, res, hit));
    const a = await instance(t, 'a', lose);
    const b = await instance(t, 'b', answer(200));
    const { call, retries, served } = await front(t, [a, b], { method: 'POST', resendOnLoss: true });
    const r = await call();
    assert.equal(r.status, 200);
    assert.deepEqual([a.hits, b.hits], [2, 0]);
    assert.equal(retries.length, 1);
    assert.match(retries[0] ?? '', /^(UND_ERR_SOCKET|ECONNRESET|EPIPE|UND_ERR_CLOSED)$/);
    assert.deepEqual(served, ['a']);
  });

  test('without resendOnLoss a broken connection after sending is an error, never moved elsewhere', async (t) => {
    const a = await instance(t, 'a', (req) => req.socket.destroy());
    const b = await instance(t, 'b', answer(200));
    const { call } = await front(t, [a, b], { method: 'POST' });
    const r = await call();
    assert.equal(r.status, 502);
    assert.equal(JSON.parse(r.body).code, 'UPSTREAM_UNAVAILABLE');
    assert.deepEqual([a.hits, b.hits], [1, 0]);
  });

  test('a Retry-After that outlasts the deadline is not waited for: the caller gets the 503 at once', async (t) => {
    const a = await instance(t, 'a', answer(503, { 'retry-after': '2' }));
    const b = await instance(t, 'b', answer(200));
    const { call, retries } = await front(t, [a, b], { idempotent: true, timeoutMs: 1500 });
    const r = await call();
    assert.equal(r.status, 503, 'the peer\'s refusal, not a timeout after 1.5 s');
    assert.equal(r.retryAfter, '2');
    assert.deepEqual([a.hits, b.hits], [1, 0]);
    assert.deepEqual(retries, []);
  });

  test('a SendMessage whose instance went away after it was sent is never moved: OUTCOME_UNKNOWN names the message and the instance', async (t) => {
    // a takes the request, then its process dies (the connection breaks, later connections are refused).
    const a: TestInstance = { instance: 'a', endpoint: '', identity: 'spiffe://t.test/agent/a', hits: 0 };
    const server = createServer((req) => {
      a.hits++;
      server.close();
      req.socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => { server.closeAllConnections(); server.close(); });
    a.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const b = await instance(t, 'b', answer(200));
    const { call } = await front(t, [a, b], { method: 'POST', resendOnLoss: true, messageId: 'm-123' });
    const r = await call();
    assert.equal(r.status, 502);
    const body = JSON.parse(r.body) as { code: string; message: string; details: Record<string, string> };
    assert.equal(body.code, 'OUTCOME_UNKNOWN');
    assert.match(body.message, /message 'm-123' may have reached instance 'a'/);
    assert.deepEqual(body.details, { messageId: 'm-123', instance: 'a' });
    assert.deepEqual([a.hits, b.hits], [1, 0], 'never sent to b');
  });

  for (const status of [404, 503]) {
    test(`a fast ${status} counts against its instance: of 50 calls it gets at most 5`, async (t) => {
      const a = await instance(t, 'a', answer(status));
      const b = await instance(t, 'b', (req, res, hit) => { setTimeout(() => answer(200)(req, res, hit), 20); });
      const { call } = await front(t, [a, b], { method: 'POST', preferred: null, isFault: (s) => s >= 500 || s === 404 });
      const statuses: number[] = [];
      for (let n = 0; n < 50; n++) statuses.push((await call()).status);
      assert.ok(a.hits <= 5, `the failing instance got ${a.hits} of 50 calls`);
      assert.equal(statuses.filter((s) => s === status).length, a.hits, 'its answers are relayed as they are');
    });
  }

  test('Retry-After is honoured before the retry, capped at 5 s (fake time)', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    for (const [retryAfter, expectedMs] of [['2', 2000], ['60', 5000]] as const) {
      const a = await instance(t, `a${retryAfter}`, answer(503, { 'retry-after': retryAfter }));
      const b = await instance(t, `b${retryAfter}`, answer(200));
      const { call } = await front(t, [a, b], { idempotent: true });
      const pending = call();
      // Advance fake time in 50 ms steps, letting real I/O run between them, until b sees the retry.
      let ticked = 0;
      while (b.hits === 0 && ticked < 20_000) {
        for (let i = 0; i < 5; i++) await turn();
        if (a.hits === 0) continue;
        t.mock.timers.tick(50);
        ticked += 50;
      }
      assert.equal((await pending).status, 200);
      assert.ok(ticked >= expectedMs, `Retry-After ${retryAfter}: retried after ${ticked} ms of fake time, expected ≥ ${expectedMs}`);
      assert.ok(ticked <= expectedMs + 1000, `Retry-After ${retryAfter}: retried after ${ticked} ms of fake time, expected about ${expectedMs}`);
    }
  });
});
