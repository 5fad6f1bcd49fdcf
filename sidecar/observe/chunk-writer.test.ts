// The chunk writer's reuse of memory: a chunk is written again only when every view of it was released,
// and views still out keep their bytes, whatever is written after them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkWriter } from './chunk-writer.ts';

const text = (parts: readonly Buffer[]) => Buffer.concat(parts).toString('latin1');

test('released chunks are written again; views still out keep their bytes', () => {
  const out = new ChunkWriter(16);
  out.ascii('a'.repeat(10));
  out.ascii('b'.repeat(10)); // does not fit: a second chunk
  out.ascii('c'.repeat(10)); // a third
  const first = out.take();
  assert.equal(text(first.parts), `${'a'.repeat(10)}${'b'.repeat(10)}${'c'.repeat(10)}`);
  assert.equal(first.bytes, 30);
  assert.equal(out.chunksOut, 3);
  assert.equal(out.chunksFree, 0);

  out.ascii('d'.repeat(4)); // still in the third chunk, after the views taken
  const second = out.take();
  assert.equal(text(second.parts), 'dddd');

  out.release(first.parts, true);
  // The first two chunks are free; the third is still written into and has a view out.
  assert.equal(out.chunksFree, 2);
  assert.equal(out.chunksOut, 1);

  out.ascii('e'.repeat(10)); // a reused chunk
  out.ascii('f'.repeat(10)); // the other reused chunk
  const third = out.take();
  assert.equal(out.chunksFree, 0, 'both free chunks were taken again');
  assert.equal(text(third.parts), `${'e'.repeat(10)}${'f'.repeat(10)}`);
  assert.equal(text(second.parts), 'dddd', 'a view not released keeps its bytes');

  out.release(second.parts, true);
  // The third chunk was set aside with its last view released just now: free again.
  assert.equal(out.chunksFree, 1);
  out.release(third.parts, true);
  assert.equal(out.chunksOut, 0);
});

test('views never released are never overwritten, and foreign or repeated releases do nothing', () => {
  const out = new ChunkWriter(16);
  const kept: { parts: Buffer[] }[] = [];
  for (let i = 0; i < 20; i++) {
    out.ascii(String(i).padStart(12, '0'));
    kept.push(out.take());
  }
  out.release([Buffer.from('not from this writer')], true);
  assert.equal(out.chunksFree, 0);
  kept.forEach((k, i) => assert.equal(text(k.parts), String(i).padStart(12, '0')));

  const one = kept[0] as { parts: Buffer[] };
  out.release(one.parts, true);
  out.release(one.parts, true); // twice: the chunk's count is gone, nothing more happens
  assert.equal(out.chunksFree, 1);
  kept.slice(1).forEach((k, i) => assert.equal(text(k.parts), String(i + 1).padStart(12, '0')));
});

test('a chunk larger than the chunk size (a long escaped string) is not kept for reuse', () => {
  const out = new ChunkWriter(16);
  out.string('x'.repeat(40));
  out.ascii('y');
  const taken = out.take();
  assert.equal(text(taken.parts), `"${'x'.repeat(40)}"y`);
  out.release(taken.parts, true);
  assert.equal(out.chunksFree, 0, 'only chunks of the chunk size are reused');
});

test('views released as not reusable (a failed or unfinished export) are no longer counted, and their chunks never reused', () => {
  const out = new ChunkWriter(16);
  out.ascii('a'.repeat(10));
  const failed = out.take();
  out.ascii('b'.repeat(10)); // sets the first chunk aside
  const sent = out.take();
  out.release(failed.parts, false);
  assert.equal(out.chunksOut, 1, 'the failed request\'s chunk is no longer counted');
  assert.equal(out.chunksFree, 0, 'and not reused: a closing socket may still read it');
  // A chunk with one view released as not reusable stays out of reuse even when its other views come back fine.
  out.ascii('c'.repeat(4));
  const third = out.take();
  out.release(third.parts, false);
  out.release(sent.parts, true);
  out.ascii('d'.repeat(10)); // sets the second chunk aside
  assert.equal(out.chunksFree, 0);
  assert.equal(out.chunksOut, 0);
  assert.equal(text(sent.parts), 'b'.repeat(10));
});
