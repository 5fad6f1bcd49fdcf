// AuditStream.publish on a real nats-server: a batch is stored in order and stops at the first message
// the server refuses, so nothing after it is stored ahead of its resend (the hash chain keeps its order).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { startNatsServer } from '../test/support/nats-server.ts';
import { openAuditStream } from './audit-stream.ts';

test('a batch stops at the first refused message: nothing after it is stored', async (t) => {
  const nats = await startNatsServer();
  t.after(() => nats.stop());
  // The stream exists already, with a message size limit the middle record breaks.
  const nc = await connect({ servers: nats.url });
  t.after(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'b-audit', subjects: ['b-audit.>'], storage: StorageType.File, max_msg_size: 200 });
  const stream = await openAuditStream({ nats: nats.url, bucket: 'b', name: 'audit-stream-test' });
  t.after(() => stream.close());
  const subject = 'b-audit.clerk.i1';
  const stored = await stream.publish(subject, [
    { id: 'r1', data: '{"seq":1}' }, { id: 'r2', data: JSON.stringify({ seq: 2, pad: 'x'.repeat(400) }) }, { id: 'r3', data: '{"seq":3}' },
  ], 5000);
  assert.equal(stored, 1);
  assert.equal((await jsm.streams.info('b-audit')).state.messages, 1, 'the record after the refused one was not stored');
  assert.equal(await stream.lastOf(subject), '{"seq":1}');
});

test('a message carrying several records is read back one record at a time, in order', async (t) => {
  const nats = await startNatsServer();
  t.after(() => nats.stop());
  const stream = await openAuditStream({ nats: nats.url, bucket: 'c', name: 'audit-stream-test' });
  t.after(() => stream.close());
  const subject = 'c-audit.clerk.i1';
  assert.equal(await stream.publish(subject, [{ id: 'i1:1-3', data: '{"seq":1}\n{"seq":2}\n{"seq":3}' }, { id: 'i1:4-4', data: '{"seq":4}' }], 5000), 2);
  // The same batch again (a resend after a lost ack) is dropped by its msg id.
  assert.equal(await stream.publish(subject, [{ id: 'i1:4-4', data: '{"seq":4}' }], 5000), 1);
  const read = [];
  for await (const r of stream.read({})) read.push(r);
  assert.deepEqual(read, [
    { text: '{"seq":1}', message: 1, line: 1 }, { text: '{"seq":2}', message: 1, line: 2 },
    { text: '{"seq":3}', message: 1, line: 3 }, { text: '{"seq":4}', message: 2, line: 1 },
  ]);
  assert.equal(await stream.lastOf(subject), '{"seq":4}');
});
