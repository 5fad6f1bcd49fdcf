// Card handling: where the local agent serves each binding, and rewriting so every interface points
// at the sidecar route (v1.0 supportedInterfaces and v0.3 url / additionalInterfaces).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentEndpoints, parseAgentCard, rewriteCard } from './agent-card.ts';
import { parseRoute } from '../http/routes.ts';

const v1 = {
  name: 'a', extra: { kept: true },
  supportedInterfaces: [
    { url: 'http://127.0.0.1:1/a2a/jsonrpc', protocolBinding: 'JSONRPC', tenant: '', protocolVersion: '1.0' },
    { url: 'http://127.0.0.1:1/a2a/rest', protocolBinding: 'HTTP+JSON', tenant: 't', protocolVersion: '1.0' },
    { url: 'http://127.0.0.1:2', protocolBinding: 'GRPC', tenant: '', protocolVersion: '1.0' },
  ],
};
const v03 = { name: 'b', url: 'http://127.0.0.1:3/rpc', preferredTransport: 'JSONRPC', additionalInterfaces: [{ url: 'http://127.0.0.1:3/rest', transport: 'HTTP+JSON' }, { url: 'x:1', transport: 'GRPC' }] };

test('endpoints come from v1.0 and v0.3 cards', () => {
  assert.deepEqual(agentEndpoints(parseAgentCard(v1, 'test')), { JSONRPC: 'http://127.0.0.1:1/a2a/jsonrpc', 'HTTP+JSON': 'http://127.0.0.1:1/a2a/rest' });
  assert.deepEqual(agentEndpoints(parseAgentCard(v03, 'test')), { JSONRPC: 'http://127.0.0.1:3/rpc', 'HTTP+JSON': 'http://127.0.0.1:3/rest' });
  assert.throws(() => parseAgentCard({ name: 'c', supportedInterfaces: [{ url: 'x', protocolBinding: 'GRPC' }] }, 'http://c'), /no JSONRPC or HTTP\+JSON interface/);
  assert.throws(() => parseAgentCard({ nope: 1 }, 'http://d'), /agent card from http:\/\/d is invalid/);
});

test('rewriting points every proxied interface at the route, drops gRPC, keeps the rest', () => {
  const out = rewriteCard(v1, 'http://127.0.0.1:15001/a2a/a') as typeof v1;
  assert.deepEqual(out.supportedInterfaces.map((i) => [i.url, i.protocolBinding, i.tenant]), [
    ['http://127.0.0.1:15001/a2a/a', 'JSONRPC', ''], ['http://127.0.0.1:15001/a2a/a', 'HTTP+JSON', 't'],
  ]);
  assert.deepEqual(out.extra, { kept: true });
  const old = rewriteCard(v03, 'http://h/a2a/b') as typeof v03;
  assert.equal(old.url, 'http://h/a2a/b');
  assert.deepEqual(old.additionalInterfaces, [{ url: 'http://h/a2a/b', transport: 'HTTP+JSON' }]);
});

test('routes', () => {
  assert.deepEqual(parseRoute('/a2a/x'), { kind: 'a2a', name: 'x', rest: '', search: '', path: '/a2a/x' });
  assert.deepEqual(parseRoute('/a2a/x/'), { kind: 'a2a', name: 'x', rest: '', search: '', path: '/a2a/x/' });
  assert.equal((parseRoute('/a2a/x/tasks/1?historyLength=2') as { rest: string }).rest, '/tasks/1');
  assert.equal((parseRoute('/a2a/x/tasks/1?historyLength=2') as { search: string }).search, '?historyLength=2');
  assert.equal(parseRoute('/a2a/bad.name').kind, 'unknown');
  assert.equal(parseRoute('/registry/agents?skill=s').kind, 'registry-agents');
});
