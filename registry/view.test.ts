// Unit tests for the in-memory view and its outage clock: queries, change events, staleness, outages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../test/support/wait.ts';
import { OutageClock } from './outage-clock.ts';
import { recordKey, type AgentRecord, type RegistryRecord } from './record.ts';
import { RecordView } from './view.ts';
import { until } from '../test/support/registry-records.ts';

function agent(name: string, instance: string, options: { skills?: { id: string; tags?: string[] }[]; labels?: Record<string, string>; heartbeatAt?: number } = {}): AgentRecord {
  const at = new Date(options.heartbeatAt ?? Date.now()).toISOString();
  return {
    kind: 'agent', name, instance, identity: `spiffe://mesh.test/agent/${name}`, endpoint: 'https://127.0.0.1:9',
    labels: options.labels ?? {}, card: { name, skills: options.skills ?? [] }, startedAt: at, heartbeatAt: at,
  };
}

const put = (view: RecordView, record: RegistryRecord): void => view.apply({ op: 'put', key: recordKey(record), record });

function viewFor(ttlMs: number, t: { after: (fn: () => void) => void }): RecordView {
  const view = new RecordView({ ttlMs, sweepMs: 20 });
  t.after(() => view.close());
  return view;
}

test('queries select by name, skill id or tag, tag only, and every label; results are sorted', (t) => {
  const view = viewFor(60_000, t);
  put(view, agent('writer', 'b', { skills: [{ id: 'write', tags: ['prose'] }], labels: { region: 'eu', tier: 'gold' } }));
  put(view, agent('writer', 'a', { skills: [{ id: 'write', tags: ['prose'] }], labels: { region: 'us' } }));
  put(view, agent('coder', 'a', { skills: [{ id: 'code', tags: ['prose', 'ts'] }], labels: { region: 'eu' } }));
  put(view, { ...agent('tools', 'a'), kind: 'mcp', tools: [{ name: 'grep' }] } as unknown as RegistryRecord);
  const ids = (records: AgentRecord[]) => records.map(recordKey);

  assert.deepEqual(ids(view.agents()), ['agents.coder.a', 'agents.writer.a', 'agents.writer.b']);
  assert.deepEqual(ids(view.agents({ name: 'writer' })), ['agents.writer.a', 'agents.writer.b']);
  assert.deepEqual(ids(view.agents({ skill: 'write' })), ['agents.writer.a', 'agents.writer.b']);
  assert.deepEqual(ids(view.agents({ skill: 'prose' })), ['agents.coder.a', 'agents.writer.a', 'agents.writer.b']);
  assert.deepEqual(ids(view.agents({ tag: 'ts' })), ['agents.coder.a']);
  assert.deepEqual(ids(view.agents({ tag: 'code' })), []);
  assert.deepEqual(ids(view.agents({ skill: 'prose', labels: { region: 'eu' } })), ['agents.coder.a', 'agents.writer.b']);
  assert.deepEqual(ids(view.agents({ labels: { region: 'eu', tier: 'gold' } })), ['agents.writer.b']);
  assert.deepEqual(ids(view.agents({ name: 'coder', skill: 'write' })), []);
  assert.deepEqual(ids(view.agents({ skill: 'nothing' })), []);
  assert.deepEqual(view.mcpServers().map(recordKey), ['mcp.tools.a']);
  assert.deepEqual(view.mcpInstances('tools').map(recordKey), ['mcp.tools.a']);
  assert.deepEqual(view.agentInstances('tools'), []);
});

test('listeners hear about new, changed and deleted records, not about heartbeats', (t) => {
  const view = viewFor(60_000, t);
  let changes = 0;
  const off = view.onChange(() => changes++);
  const first = agent('a', 'i1', { heartbeatAt: Date.now() - 1000 });
  put(view, first);
  assert.equal(changes, 1);
  const later = new Date().toISOString();
  put(view, { ...first, heartbeatAt: later });
  assert.equal(changes, 1, 'a heartbeat is not a change');
  assert.equal(view.agentInstances('a')[0]?.heartbeatAt, later, 'the view keeps the latest heartbeat');
  put(view, { ...first, labels: { v: '2' } });
  assert.equal(changes, 2);
  view.apply({ op: 'delete', key: 'agents.a.i1' });
  assert.equal(changes, 3);
  view.apply({ op: 'delete', key: 'agents.a.i1' });
  assert.equal(changes, 3, 'deleting what is not there is not a change');
  off();
  put(view, agent('b', 'i1'));
  assert.equal(changes, 3, 'unsubscribed');
});

test('a record already stale on arrival is ignored, and a stale put removes the fresh one', (t) => {
  const view = viewFor(1000, t);
  put(view, agent('old', 'i1', { heartbeatAt: Date.now() - 5000 }));
  assert.deepEqual(view.agents(), []);
  put(view, agent('x', 'i1'));
  put(view, agent('x', 'i1', { heartbeatAt: Date.now() - 5000 }));
  assert.deepEqual(view.agentInstances('x'), []);
});

test('the sweep drops a record when it goes stale and tells listeners, with no delete and no query', async (t) => {
  const view = viewFor(300, t);
  put(view, agent('short', 'i1'));
  put(view, agent('long', 'i1', { heartbeatAt: Date.now() + 60_000 }));
  await until(view, 'expiry of the short-lived record', () => view.agentInstances('short').length === 0, 3000);
  assert.equal(view.agentInstances('long').length, 1);
});

test('records do not age while the registry is unreachable, and age again once it is back', async (t) => {
  const ttlMs = 200;
  const view = viewFor(ttlMs, t);
  const heartbeatAt = Date.now();
  put(view, agent('held', 'i1', { heartbeatAt }));
  view.setConnected(false);
  await waitFor('two TTLs of outage', () => Date.now() > heartbeatAt + 2 * ttlMs, 5000);
  view.sweep();
  assert.equal(view.agentInstances('held').length, 1, 'kept through the outage');
  view.setConnected(true);
  await until(view, 'expiry after the outage', () => view.agentInstances('held').length === 0, 3000);
});

test('the outage clock stands still during outages, also for times in the past', () => {
  const clock = new OutageClock();
  assert.equal(clock.at(1000), 1000);
  clock.setConnected(false, 2000);
  clock.setConnected(false, 2500); // repeated: ignored
  assert.equal(clock.at(2600), 2000, 'frozen during an open outage');
  clock.setConnected(true, 3000);
  clock.setConnected(true, 3100); // repeated: ignored
  assert.equal(clock.at(1500), 1500, 'before the outage');
  assert.equal(clock.at(2500), 2000, 'inside the outage');
  assert.equal(clock.at(4000), 3000, 'after it: 1000 ms paused');
  clock.setConnected(false, 5000);
  clock.setConnected(true, 5500);
  assert.equal(clock.at(6000), 4500);
  assert.equal(clock.at(5200), 4000);
  // An age across both outages: from 1500 to 6000 wall-clock, 1500 ms of it paused.
  assert.equal(clock.at(6000) - clock.at(1500), 3000);
});

test('an outage learnt of late starts in the past, but never before the end of the previous one', () => {
  const clock = new OutageClock();
  clock.setConnected(false, 1000);
  clock.setConnected(true, 2000);
  // Found out at 5000 that it began at 3000 (a stream leader that had lost its quorum still answered).
  clock.setConnected(false, 3000);
  assert.equal(clock.at(5000), 2000, 'frozen since 3000, with 1000 ms paused before');
  clock.setConnected(true, 6000);
  assert.equal(clock.at(7000), 3000);
  // Dated back to before the previous outage's end: it starts at that end instead.
  clock.setConnected(false, 5000);
  assert.equal(clock.at(8000), 2000, 'frozen since 6000 (4000 ms paused before)');
});

test('the view dates an outage back when told when it began: the record ages only until then', async (t) => {
  const ttlMs = 400;
  const view = viewFor(ttlMs, t);
  const heartbeatAt = Date.now() - 300;
  put(view, agent('late-news', 'i1', { heartbeatAt }));
  // The outage began 250 ms ago, when the record was 50 ms old; found out only now.
  view.setConnected(false, heartbeatAt + 50);
  view.setConnected(true);
  // Dated from now it would have 100 ms left; dated back it has 350 ms.
  await waitFor('200 ms after the outage', () => Date.now() > heartbeatAt + 500, 5000);
  view.sweep();
  assert.equal(view.agentInstances('late-news').length, 1);
});

test('agentInstances answers one kept list per name, made again after a heartbeat, a change or an expiry', async (t) => {
  const ttlMs = 300;
  // No sweep during the test: only the kept list's own expiry can drop the record.
  const view = new RecordView({ ttlMs, sweepMs: 60_000 });
  t.after(() => view.close());
  const first = agent('kept', 'i1');
  put(view, first);
  const list = view.agentInstances('kept');
  assert.equal(view.agentInstances('kept'), list, 'the same list while nothing changed');
  assert.ok(Object.isFrozen(list), 'shared, so frozen');
  const later = new Date(Date.now() + 1).toISOString();
  put(view, { ...first, heartbeatAt: later });
  assert.equal(view.agentInstances('kept')[0]?.heartbeatAt, later, 'a heartbeat shows at once');
  put(view, agent('kept', 'i2'));
  assert.deepEqual(view.agentInstances('kept').map((r) => r.instance), ['i1', 'i2']);
  view.apply({ op: 'delete', key: recordKey(first) });
  assert.deepEqual(view.agentInstances('kept').map((r) => r.instance), ['i2']);
  assert.equal(view.agentInstances('kept').length, 1);
  await waitFor('the TTL to pass', () => Date.now() > Date.parse(later) + ttlMs + 20, 5000);
  assert.deepEqual(view.agentInstances('kept'), [], 'gone when it expires, sweep or no sweep');
});
