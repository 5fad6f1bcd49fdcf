// Error answers without a socket: the status and body per route style, the request id in every error,
// and unexpected errors logged once with their cause.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { MeshError } from '../../sdk/errors.ts';
import { sendError } from './respond.ts';

/** A response whose written bytes are collected; returns the status line, headers and body. */
function capture(): { res: ServerResponse; text: () => string } {
  const req = new IncomingMessage(new Socket());
  req.complete = true;
  const res = new ServerResponse(req);
  let out = '';
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { out += chunk.toString(); done(); } });
  res.assignSocket(sink as unknown as Socket);
  return { res, text: () => out };
}

function logCollector() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, new Writable({ write(chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done(); } }));
  return { log, lines };
}

test('an unexpected error is INTERNAL on the wire and logged once with its cause and the request id', () => {
  const { res, text } = capture();
  const { log, lines } = logCollector();
  sendError(res, new TypeError('boom at line 3'), { style: 'json', requestId: 'req-1', log });
  assert.match(text(), /^HTTP\/1\.1 500/);
  assert.match(text(), /x-agentmesh-request-id: req-1/);
  assert.doesNotMatch(text(), /boom/, 'the cause stays in the log, not on the wire');
  assert.equal(lines.length, 1);
  assert.equal(lines[0]?.requestId, 'req-1');
  assert.match(JSON.stringify(lines[0]?.err), /boom at line 3/);
});

test('a catalog error is not logged as internal', () => {
  const { res } = capture();
  const { log, lines } = logCollector();
  sendError(res, new MeshError('AGENT_NOT_FOUND', "agent 'x' not found"), { style: 'json', requestId: 'r', log });
  assert.equal(lines.length, 0);
});

test('on the A2A JSON-RPC route an error is HTTP 200 with the id echoed and the status in a header', () => {
  const { res, text } = capture();
  sendError(res, new MeshError('UPSTREAM_TIMEOUT', 'deadline of 5 ms exceeded'), { style: 'a2a-jsonrpc', rpcId: 42, requestId: 'r2' });
  const [head, body] = text().split('\r\n\r\n');
  assert.match(head ?? '', /^HTTP\/1\.1 200/);
  assert.match(head ?? '', /x-agentmesh-status: 504/);
  assert.match(head ?? '', /x-agentmesh-error: UPSTREAM_TIMEOUT/);
  const parsed = JSON.parse(body ?? '') as { id: number; error: { code: number; data: { requestId: string } } };
  assert.equal(parsed.id, 42);
  assert.equal(parsed.error.code, -32052);
  assert.equal(parsed.error.data.requestId, 'r2');
});

test('on MCP and sidecar-to-sidecar JSON-RPC the failure keeps its HTTP status', () => {
  const { res, text } = capture();
  sendError(res, new MeshError('UPSTREAM_UNAVAILABLE', 'gone'), { style: 'jsonrpc', rpcId: 'a' });
  assert.match(text(), /^HTTP\/1\.1 502/);
});

test('an error that says when to try again carries Retry-After in whole seconds, its status kept between sidecars', () => {
  const { res, text } = capture();
  sendError(res, new MeshError('CALLER_OVER_LIMIT', 'over its share', { retryAfterMs: 1500 }), { style: 'jsonrpc', rpcId: 7 });
  const [head, body] = text().split('\r\n\r\n');
  assert.match(head ?? '', /^HTTP\/1\.1 429/);
  assert.match(head ?? '', /retry-after: 2/i);
  assert.equal((JSON.parse(body ?? '') as { error: { code: number } }).error.code, -32062);
  const other = capture();
  sendError(other.res, new MeshError('OVERLOADED', 'saturated', { retryAfterMs: 20 }), { style: 'a2a-jsonrpc', rpcId: 8 });
  assert.match(other.text(), /retry-after: 1/i);
  assert.match(other.text(), /x-agentmesh-status: 503/);
  const none = capture();
  sendError(none.res, new MeshError('UPSTREAM_TIMEOUT', 'late'), { style: 'json' });
  assert.doesNotMatch(none.text(), /retry-after/i);
});
