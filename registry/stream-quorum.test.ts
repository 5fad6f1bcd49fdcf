import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PEER_SILENT_MS, quorumLoss } from './stream-quorum.ts';

const ms = (n: number) => n * 1e6; // PeerInfo.active is in nanoseconds
const peer = (name: string, activeMs: number, offline = false) => ({ name, current: true, offline, active: ms(activeMs), lag: 0 });

test('a leader that heard from one replica of two lately has a quorum', () => {
  assert.equal(quorumLoss({ leader: 'n1', replicas: [peer('n2', 400), peer('n3', 9000)] }), undefined);
  assert.equal(quorumLoss({ leader: 'n1', replicas: [peer('n2', 1900), peer('n3', 1800)] }), undefined);
});

test('a leader that heard from neither replica within the window has lost its quorum, since the later of the two', () => {
  const lost = quorumLoss({ leader: 'n1', replicas: [peer('n2', 7000), peer('n3', PEER_SILENT_MS + 200)] });
  assert.ok(lost);
  assert.equal(lost.sinceMs, PEER_SILENT_MS + 200);
  assert.match(lost.reason, /n1 has heard from 0 of 2 replicas/);
});

test('an offline replica counts as silent whatever its last contact', () => {
  const lost = quorumLoss({ leader: 'n1', replicas: [peer('n2', 0, true), peer('n3', 5000)] });
  assert.ok(lost);
  assert.equal(lost.sinceMs, PEER_SILENT_MS);
});

test('R5: the leader needs two replicas; the outage began when the second most recent went quiet', () => {
  const replicas = [peer('n2', 100), peer('n3', 4000), peer('n4', 6000), peer('n5', 8000)];
  const lost = quorumLoss({ leader: 'n1', replicas });
  assert.equal(lost?.sinceMs, 4000);
  assert.equal(quorumLoss({ leader: 'n1', replicas: [peer('n2', 100), peer('n3', 200), ...replicas.slice(2)] }), undefined);
});

test('a stream with no replicas (R1) always has its quorum', () => {
  assert.equal(quorumLoss({ leader: 'n1' }), undefined);
  assert.equal(quorumLoss({ leader: 'n1', replicas: [] }), undefined);
});

test('a replica whose last contact is not a number counts as silent, and the outage start stays a number', () => {
  const odd = (name: string, active: unknown) => ({ name, current: false, offline: false, active: active as number, lag: 0 });
  const lost = quorumLoss({ leader: 'n1', replicas: [odd('n2', undefined), odd('n3', 'soon')] });
  assert.ok(lost, 'no replica heard from: no quorum');
  assert.ok(Number.isFinite(lost.sinceMs), String(lost.sinceMs));
  assert.equal(quorumLoss({ leader: 'n1', replicas: [odd('n2', undefined), peer('n3', 100)] }), undefined);
});
