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

test('the latency histogram prints as prom-client\'s own Histogram would, and counters count each request once across scrapes', async () => {
  const { Histogram, Registry } = await import('prom-client');
  const reference = new Registry();
  const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
  const histogram = new Histogram({ name: 'agentmesh_request_duration_seconds', help: 'Time from request to the end of the response (whole stream for SSE)', labelNames: ['direction', 'target', 'method'], buckets, registers: [reference] });
  const metrics = createMetrics();
  const calls: [string, string, string, number, number][] = [
    ['outbound', 'agent/echo', 'SendMessage', 200, 0.0005], ['outbound', 'agent/echo', 'SendMessage', 200, 0.0007],
    ['outbound', 'agent/echo', 'SendMessage', 503, 0.3], ['inbound', 'agent/echo', 'GetTask', 200, 75], ['outbound', 'mcp/files', 'tools/call', 0, 10],
  ];
  for (const [direction, target, method, code, seconds] of calls) {
    metrics.observe(direction as 'inbound' | 'outbound', target, method, '-', code, seconds);
    histogram.observe({ direction, target, method }, seconds);
  }
  const ours = await lines(metrics, 'agentmesh_request_duration_seconds');
  const theirs = (await reference.metrics()).split('\n').filter((l) => l.startsWith('agentmesh_request_duration_seconds'));
  assert.deepEqual(ours, theirs);
  assert.ok(ours.includes('agentmesh_request_duration_seconds_bucket{le="0.0005",direction="outbound",target="agent/echo",method="SendMessage"} 1'), ours.join('\n'));
  type Value = { labels: object; value: number; metricName?: string };
  const shape = (values: Value[] | undefined) => values?.map((v) => ({ labels: v.labels, value: v.value, metricName: v.metricName }));
  const asJson = (await metrics.registry.getSingleMetric('agentmesh_request_duration_seconds')?.get())?.values as Value[] | undefined;
  assert.deepEqual(shape(asJson), shape((await histogram.get()).values as Value[]), 'get() (the dashboard reads it) as prom-client gives it');
  const requests = async () => (await lines(metrics, 'agentmesh_requests_total{')).join('\n');
  const first = await requests();
  assert.match(first, /direction="outbound",target="agent\/echo",method="SendMessage",caller="-",code="200"\} 2$/m);
  assert.equal(await requests(), first, 'a second scrape adds nothing');
  metrics.observe('outbound', 'agent/echo', 'SendMessage', '-', 200, 0.001);
  assert.match(await requests(), /method="SendMessage",caller="-",code="200"\} 3$/m);
  assert.match((await lines(metrics, 'agentmesh_request_errors_total{')).join('\n'), /code="503"\} 1\n.*code="0"\} 1$/);
});
