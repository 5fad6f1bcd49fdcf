// SseGuard on its own: events pass whole (split or joined across chunks, LF or CRLF), incomplete events
// are held until they complete, and a line or event over the cap stops everything.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SseGuard } from './sse-guard.ts';

function run(max: number, chunks: string[]) {
  const guard = new SseGuard(max);
  const out: string[] = [];
  let events = 0;
  for (const c of chunks) {
    guard.feed(Buffer.from(c), (b) => { out.push(b.toString()); return true; }, () => { events++; });
    if (guard.exceeded) break;
  }
  return { guard, out, events };
}

describe('SseGuard', () => {
  test('a chunk of whole events passes as it is (the same buffer), after a split one too', () => {
    const guard = new SseGuard(1024);
    const chunk = Buffer.from('data: a\n\ndata: b\n\n');
    const passed: Buffer[] = [];
    guard.feed(chunk, (b) => { passed.push(b); return true; }, () => undefined);
    assert.equal(passed.length, 1);
    assert.equal(passed[0], chunk);
    guard.feed(Buffer.from('data: c\r\n'), (b) => { passed.push(b); return true; }, () => undefined);
    const crlf = Buffer.from('\r\ndata: d\r\n\r\n');
    guard.feed(crlf, (b) => { passed.push(b); return true; }, () => undefined);
    assert.deepEqual(passed.slice(1).map(String), ['data: c\r\n', '\r\ndata: d\r\n\r\n']);
    assert.equal(passed[2], crlf);
  });

  test('an event split across chunks is held until its blank line arrives', () => {
    const { out, events } = run(1024, ['data: he', 'llo\n', '\ndata: x']);
    assert.deepEqual(out, ['data: he', 'llo\n', '\n']);
    assert.equal(events, 1);
  });

  test('CRLF line ends, also with the CR and LF in different chunks', () => {
    assert.deepEqual(run(1024, ['data: a\r\n\r', '\ndata: b\r\n\r\n']).out, ['data: a\r\n\r', '\ndata: b\r\n\r\n']);
  });

  test('bytes without a blank line are not an event (the idle timer does not restart)', () => {
    const { events, out } = run(1024, ['d', 'a', 't', 'a', ':', ' ', '1', '\n']);
    assert.equal(events, 0);
    assert.deepEqual(out, []);
  });

  test('a line over the cap, arriving in pieces, stops the stream; nothing of it is passed on', () => {
    const { guard, out } = run(1024, ['data: ok\n\n', `data: ${'x'.repeat(600)}`, 'x'.repeat(600)]);
    assert.equal(guard.exceeded, true);
    assert.deepEqual(out, ['data: ok\n\n']);
    assert.match(guard.describe(), /SSE line exceeded the limit of 1024 bytes \(limits.maxSseEvent\)/);
  });

  test('an event of many short lines over the cap stops the stream', () => {
    const { guard } = run(1024, [`${'data: 0123456789\n'.repeat(100)}`]);
    assert.equal(guard.exceeded, true);
    assert.match(guard.describe(), /SSE event exceeded/);
  });

  test('flush passes an incomplete last event when the stream ends', () => {
    const guard = new SseGuard(1024);
    const out: string[] = [];
    const pass = (b: Buffer) => { out.push(b.toString()); return true; };
    guard.feed(Buffer.from('data: a\n\ndata: tail'), pass, () => undefined);
    guard.flush(pass);
    assert.deepEqual(out, ['data: a\n\n', 'data: tail']);
  });
});
