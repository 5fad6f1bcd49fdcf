// Upstream SSE within bounds, through two in-process sidecars (caller → mTLS → agent's sidecar → agent):
// a line over limits.maxSseEvent ends the stream with a JSON-RPC error event and none of that line is
// passed on; bytes that never complete an event do not keep a stream open past its idle timeout.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { echoExecutor } from './fixtures/agents.ts';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { createTestPki, type TestPki } from './support/certs.ts';
import { startTestSidecar, type TestSidecar } from './support/in-process-sidecar.ts';
import { waitFor } from './support/wait.ts';

const CAP = 4096;
/** Short, so the trickle ends soon; long enough for a first event on a busy machine. */
const IDLE_MS = 3000;

/** Answers every streaming call itself, by the text of its message: a huge line, or a trickle of bytes. */
function rawStreams(timers: Set<NodeJS.Timeout>) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void) => {
    if (req.method !== 'POST') return next();
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { body += c; });
    req.on('end', () => {
      const id = (JSON.parse(body) as { id: unknown }).id;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', id, result: { first: true } })}\n\n`);
      if (body.includes('huge-line')) {
        res.end(`data: ${'x'.repeat(CAP * 2)}\n\n`);
      } else {
        // One byte every 100 ms, never a blank line: no event ever completes.
        const timer = setInterval(() => { if (!res.destroyed) res.write('x'); }, 100);
        timers.add(timer);
        res.on('close', () => { clearInterval(timer); timers.delete(timer); });
      }
    });
  };
}

describe('SSE limits', () => {
  let pki: TestPki;
  let dir: string;
  let agent: AgentServer;
  let agentSide: TestSidecar;
  let caller: TestSidecar;
  const timers = new Set<NodeJS.Timeout>();

  before(async () => {
    pki = await createTestPki({ trustDomain: 'sse.test' });
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-sse-'));
    agent = await serveAgent({ name: 'streamer', executor: echoExecutor(), configure: (app) => app.use(rawStreams(timers)) });
    agentSide = await startTestSidecar({ name: 'streamer', pki, registryDir: dir, config: { agent: { url: agent.url }, limits: { maxSseEvent: CAP } } });
    caller = await startTestSidecar({ name: 'sse-caller', pki, registryDir: dir, config: { limits: { maxSseEvent: CAP }, resilience: { defaults: { timeout: `${IDLE_MS}ms` } } } });
    await waitFor('agent streamer visible to the caller', async () => {
      const body = await (await fetch(`${caller.outbound}/registry/agents?name=streamer`)).json() as { agents: unknown[] };
      return body.agents.length === 1;
    });
  });
  after(async () => {
    for (const t of timers) clearInterval(t);
    await caller?.close();
    await agentSide?.close();
    await agent?.close();
    await pki?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const stream = (text: string, id: number) => fetch(`${caller.outbound}/a2a/streamer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'SendStreamingMessage', params: { message: { messageId: `m-${text}-${id}`, role: 'ROLE_USER', parts: [{ text }] } } }),
    // Far beyond the idle timeout: without the guard a trickle kept the stream open until this fired.
    signal: AbortSignal.timeout(15_000),
  });

  test('a line over the cap ends the stream with a JSON-RPC error event; none of the line is passed on', async () => {
    const res = await stream('huge-line', 41);
    assert.equal(res.status, 200);
    const text = await res.text();
    const events = text.split('\n\n').filter((e) => e !== '');
    assert.equal(events.length, 2, `two events: the first and the error\n${text.slice(0, 500)}`);
    assert.deepEqual(JSON.parse((events[0] ?? '').slice('data: '.length)), { jsonrpc: '2.0', id: 41, result: { first: true } });
    assert.ok(!text.includes('xxxx'), 'no byte of the oversized line reached the caller');
    const error = JSON.parse((events[1] ?? '').slice('data: '.length)) as { id: number; error: { code: number; message: string; data: { code: string } } };
    assert.equal(error.id, 41);
    assert.equal(error.error.code, -32068);
    assert.equal(error.error.data.code, 'STREAM_LIMIT_EXCEEDED');
    assert.match(error.error.message, /SSE line exceeded the limit of 4096 bytes \(limits.maxSseEvent\)/);
  });

  test('a trickle of bytes without an event ends at the idle timeout with an error event', async () => {
    const res = await stream('trickle', 42);
    assert.equal(res.status, 200);
    const text = await res.text();
    const events = text.split('\n\n').filter((e) => e !== '');
    assert.equal(events.length, 2, text.slice(0, 500));
    assert.ok(!events[1]?.startsWith('data: x'), 'the incomplete event is not passed on');
    const error = JSON.parse((events[1] ?? '').replace(/^data: /, '')) as { id: number; error: { data: { code: string } } };
    assert.equal(error.id, 42);
    assert.equal(error.error.data.code, 'UPSTREAM_TIMEOUT');
  });
});
