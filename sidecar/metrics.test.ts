import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { createMetrics, MAX_CALLERS, trackRequest, type Metrics } from './metrics.ts';
import { RequestContext } from './request-context.ts';
import { createLogger } from './log.ts';

const lines = async (metrics: Metrics, prefix: string) =>
  (await metrics.registry.metrics()).split('\n').filter((l) => l.startsWith(prefix));

test('default process metrics carry the agentmesh_ prefix once', async () => {
  const text = await createMetrics().registry.metrics();
  assert.match(text, /^agentmesh_process_cpu_seconds_total /m);
  assert.match(text, /^agentmesh_nodejs_eventloop_lag_seconds /m);
  assert.doesNotMatch(text, /process_process_/);
});

test('the caller label holds at most MAX_CALLERS values, then other', async () => {
  const metrics = createMetrics();
  for (let i = 0; i < MAX_CALLERS + 5; i++) metrics.observe('inbound', 'agent/echo', 'SendMessage', `spiffe://t/agent/a${i}`, 200, 0.001);
  const series = await lines(metrics, 'agentmesh_requests_total{');
  assert.equal(series.length, MAX_CALLERS + 1);
  assert.ok(series.some((l) => l.includes('caller="other"') && l.endsWith(' 5')), series.join('\n'));
});

/** One real HTTP exchange whose response is a stream the client closes after the first bytes. */
async function clientClosesStream(method: string, cutByServer = false): Promise<string[]> {
  const metrics = createMetrics();
  const server = createServer((req, res) => {
    const ctx = new RequestContext('inbound', req, createLogger('silent'));
    trackRequest(metrics, ctx, res);
    Object.assign(ctx, { target: { kind: 'mcp', name: 'files' }, method, caller: 'spiffe://t/agent/a' });
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(': open\n\n');
    if (cutByServer) res.destroy(new Error('upstream cut'));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const closed = new Promise<void>((resolve) => server.once('request', (_req, res) => res.once('close', () => resolve())));
    const req = request({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: '/mcp/files' });
    req.on('error', () => undefined);
    req.on('response', (res) => {
      res.on('error', () => undefined);
      res.once('data', () => req.destroy());
    });
    req.end();
    await closed;
    return await lines(metrics, 'agentmesh_request');
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

test('a client closing an MCP GET stream is its normal end, not an error', async () => {
  const text = (await clientClosesStream('MCP GET')).join('\n');
  assert.match(text, /agentmesh_requests_total\{direction="inbound",target="mcp\/files",method="MCP GET",caller="spiffe:\/\/t\/agent\/a",code="200"\} 1/);
  assert.doesNotMatch(text, /agentmesh_request_errors_total\{/);
});

test('any other stream closed before its end is counted as cut (code 0)', async () => {
  const cut = /agentmesh_request_errors_total\{direction="inbound",target="mcp\/files",method="(MCP GET|tools\/call)",caller="spiffe:\/\/t\/agent\/a",code="0"\} 1/;
  assert.match((await clientClosesStream('tools/call')).join('\n'), cut);
  assert.match((await clientClosesStream('MCP GET', true)).join('\n'), cut);
});
