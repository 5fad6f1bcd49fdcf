// The local agent's health check against a real HTTP server read through the loader's pool: a card
// read that hangs past the timeout counts as a failure, `threshold` of them make the agent down, the
// next good read brings it back with the card it serves then, and a card changed while up is passed on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { CardShape } from './agent-card.ts';
import { watchAgentHealth } from './agent-health.ts';
import { loadLocalAgent } from './local-agent.ts';

function card(base: string, description: string) {
  return {
    name: 'probe', description, version: '1', capabilities: {}, skills: [], defaultInputModes: ['text'], defaultOutputModes: ['text'],
    supportedInterfaces: [{ url: `${base}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: '1.0' }],
  };
}

/** Resolves with the next value passed to the returned callback. */
function nextCall<T>() {
  let resolve: (value: T) => void = () => undefined;
  let promise = new Promise<T>((r) => { resolve = r; });
  return {
    next: () => promise,
    call: async (value: T) => { const r = resolve; promise = new Promise<T>((rr) => { resolve = rr; }); r(value); },
  };
}

test('a hanging agent goes down after threshold timeouts, comes back with its new card, and card changes are passed on', async (t) => {
  let mode: 'ok' | 'hang' = 'ok';
  let description = 'first';
  const server = createServer((req, res) => {
    if (mode === 'hang') return; // never answers: only the timeout ends the read
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(card(base, description)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));

  const agent = await loadLocalAgent({ url: base, timeoutMs: 5000, signal: new AbortController().signal });
  t.after(() => agent.close());
  const down = nextCall<string>();
  const up = nextCall<CardShape>();
  const changed = nextCall<CardShape>();
  const health = watchAgentHealth({
    name: 'probe', readCard: agent.readCard, log: pino({ level: 'silent' }),
    intervalMs: 20, timeoutMs: 100, threshold: 2,
    onDown: down.call, onUp: up.call, onCard: changed.call,
  }, agent.card);
  t.after(() => health.close());

  description = 'changed while up';
  assert.equal((await changed.next()).description, 'changed while up');

  mode = 'hang';
  const reason = await down.next();
  assert.match(reason, /local agent 'probe' is not answering: 2 failed card reads in a row, last: no answer within the timeout \(agent\.healthTimeout\)/);
  assert.equal(health.down(), reason);

  description = 'after the outage';
  mode = 'ok';
  assert.equal((await up.next()).description, 'after the outage');
  await health.close(); // waits for the check under way, which clears the reason once onUp has resolved
  await health.close();
  assert.equal(health.down(), undefined);
});
