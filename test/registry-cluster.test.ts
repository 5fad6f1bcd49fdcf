// [long] The registry on a 3-node NATS cluster (registry.nats lists all three, registry.replicas: 3),
// with real sidecar processes: every bucket and stream is R3; a sidecar started on a fresh cluster
// waits for JetStream instead of exiting; the stream leader killed under load loses no call and no
// record, and registrations and heartbeats recover (figures printed); two nodes down:
// calls route from the cache, writes fail cleanly (/readyz 503 with a reason, no crash), and everything
// recovers when the quorum returns.
// @serial: its bounds are recovery times (15 s in all, 3 s of them ours), which another test file's
// processes on the same CPUs would stretch.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { quorumLoss } from '../registry/stream-quorum.ts';
import { connectMesh, serveAgent, textOf, type AgentServer } from '../sdk/index.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { createTestPki, type TestPki } from './support/certs.ts';
import { freePorts } from './support/free-port.ts';
import { waitForAgent } from './support/mesh.ts';
import { startNatsCluster, type NatsCluster } from './support/nats-cluster.ts';
import { startSidecarProcess, type SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

const TD = 'cluster.test';

/**
 * Registrations and heartbeats after losing the stream leader. The issue asks for 10 s, but nats-server
 * 2.9 alone takes up to about 10 s to elect a new stream leader after a SIGKILL: a follower campaigns
 * 4–9 s (random) after the last Raft heartbeat it got, and heartbeats go out every second. Ours on top:
 * a failed write is retried within a second (OUR_PART_MS bounds it). Figures are printed.
 */
const RECOVERY_MS = 15_000;
/** From the new stream leader (as polled, within about a second) to the first heartbeat it stores. */
const OUR_PART_MS = 3000;
/** On top of it for the caller's view: its watch restarts within its 2 s backoff cap once consumers can be made. */
const VIEW_MS = 2000;

describe('[long] replicated registry on a 3-node NATS cluster', () => {
  let cluster: NatsCluster;
  let pki: TestPki;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let js: JetStreamClient;
  let registry: Record<string, unknown>;
  const bucket = `r${Math.random().toString(36).slice(2, 10)}`;
  const agents: AgentServer[] = [];
  const sidecars: SidecarProcess[] = [];

  async function sidecar(name: string, withAgent: boolean): Promise<SidecarProcess> {
    let agent: AgentServer | undefined;
    if (withAgent) agents.push(agent = await serveAgent({ name, executor: echoExecutor() }));
    const s = await startSidecarProcess({
      registry, log: { level: 'info' }, identity: await pki.issue(`spiffe://${TD}/agent/${name}`), ...(agent ? { agent: { url: agent.url } } : {}),
    }, { timeoutMs: 60_000 });
    sidecars.push(s);
    return s;
  }

  /**
   * The bucket's keys as the stream leader holds them; throws when JetStream does not answer. Not
   * kv.keys(): nats-server 2.9 places that listing's consumer on a random replica, which right after
   * a restart holds nothing yet (its copies older than the max age expired while it was down).
   */
  async function keys(filter = '>'): Promise<string[]> {
    const info = await jsm.streams.info(`KV_${bucket}`, { subjects_filter: `$KV.${bucket}.${filter}` });
    return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(`$KV.${bucket}.`.length));
  }

  /**
   * When the stream stored `agent`'s newest record (ms, the server's time), read from the stream
   * leader; throws when JetStream does not answer. The figures below use it rather than when the
   * test saw the record: right after an election the leader may answer reads a little later.
   */
  async function lastWrite(agent: string): Promise<number> {
    let newest = 0;
    for (const key of await keys(`agents.${agent}.>`)) {
      newest = Math.max(newest, (await jsm.streams.getMessage(`KV_${bucket}`, { last_by_subj: `$KV.${bucket}.${key}` }))?.time.getTime() ?? 0);
    }
    return newest;
  }

  /**
   * nats-server's part of a recovery: polls until a write to the registry stream commits (an empty
   * value under a key no sidecar announces: they skip it as invalid); resolves with the ms since `from`.
   */
  function firstCommit(from: number): Promise<number> {
    const committed = waitFor('a write the registry stream commits', async () => {
      await js.publish(`$KV.${bucket}.test.commit`, new Uint8Array(), { timeout: 500 });
      return Date.now() - from;
    }, 60_000, 100);
    committed.catch(() => undefined); // awaited by the caller; not unhandled if a step before fails
    return committed;
  }

  /** The end of alpha's sidecar log, for a failure message. */
  const alphaLog = (): string => `alpha's sidecar:\n${sidecars[0]?.output().slice(-3000) ?? ''}`;

  async function readyz(s: SidecarProcess): Promise<{ status: number; body: string }> {
    const res = await fetch(`${s.admin}/readyz`);
    return { status: res.status, body: await res.text() };
  }

  before(async () => {
    cluster = await startNatsCluster();
    pki = await createTestPki({ trustDomain: TD });
    // TTL 12 s: heartbeats every 4 s; a failover (about 5 s on nats-server 2.9) must not expire a record.
    registry = { nats: cluster.urls, replicas: 3, bucket, ttl: '12s' };
  });
  after(async () => {
    await Promise.allSettled(sidecars.map((s) => s.stop('SIGKILL')));
    await Promise.allSettled(agents.map((a) => a.close()));
    await nc?.close().catch(() => undefined);
    await cluster?.close();
    await pki?.close();
  });

  test('a sidecar started on a fresh cluster waits for JetStream, and creates every bucket and stream with 3 replicas', async () => {
    // No waitForMetaLeader() first: the sidecar's own start-up must ride out the leader election.
    const alpha = await sidecar('alpha', true);
    await cluster.waitForMetaLeader();
    await sidecar('me', false);
    // Short timeouts and reconnect waits: the figures below are measured by polling through this connection.
    nc = await connect({ servers: cluster.urls, name: 'test-inspector', reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    jsm = await jetstreamManager(nc, { timeout: 1000 });
    js = jetstream(nc, { timeout: 1000 });
    const streams: { name: string; replicas: number }[] = [];
    for await (const info of jsm.streams.list()) {
      if (info.config.name.includes(bucket)) streams.push({ name: info.config.name, replicas: info.config.num_replicas });
    }
    const names = streams.map((s) => s.name).sort();
    for (const expected of [`KV_${bucket}`, `KV_${bucket}-policy`, `KV_${bucket}-tasks`, `KV_${bucket}-tools`, `${bucket}-audit`]) {
      assert.ok(names.includes(expected), `${expected} in ${names.join(', ')}`);
    }
    assert.deepEqual(streams.filter((s) => s.replicas !== 3), [], 'every stream has 3 replicas');
    assert.equal(alpha.process.exitCode, null);
  });

  test('the stream leader killed under load: no call fails, nothing is lost, registrations and heartbeats recover with the new leader', async () => {
    const me = sidecars[1];
    assert.ok(me);
    await waitForAgent(me, 'alpha');
    const mesh = connectMesh({ url: me.outbound });
    const keysBefore = new Set(await keys());
    assert.ok([...keysBefore].some((k) => k.startsWith('agents.alpha.')), `alpha's record in ${[...keysBefore].join(', ')}`);

    // Load: four callers in a loop, and a watcher that alpha stays visible in me's view.
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    let invisible = 0;
    const load = Promise.all([
      ...Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          try {
            const reply = await mesh.send('alpha', `w${w}-${i}`);
            if ('parts' in reply && textOf(reply.parts) === `echo: w${w}-${i}`) ok++;
            else failures.push(JSON.stringify(reply));
          } catch (err) {
            failures.push(String(err));
          }
        }
      }),
      (async () => {
        while (!stop) {
          try {
            const body = await (await fetch(`${me.outbound}/registry/agents?name=alpha`)).json() as { agents: unknown[] };
            if (body.agents.length === 0) invisible++;
          } catch {
            invisible++;
          }
          await delay(100);
        }
      })(),
    ]);
    let heartbeatMs = 0;
    let registrationMs = 0;
    let storedMs = 0;
    let electedMs = 0;
    let commitMs = 0;
    let leader: string | undefined;
    let victim = -1;
    let killedAt = 0;
    try {
      await waitFor('some calls before the kill', () => ok >= 20, 20_000);

      // A sidecar up to the point of registering: its agent is not listening yet, so it waits for the card.
      const [latePort, lateAdmin] = await freePorts(2);
      const lateSidecar = startSidecarProcess({
        registry, identity: await pki.issue(`spiffe://${TD}/agent/late`), agent: { url: `http://127.0.0.1:${latePort}` },
        listen: { outbound: '127.0.0.1:0', inbound: '127.0.0.1:0', admin: `127.0.0.1:${lateAdmin}` },
      }, { timeoutMs: 60_000 });
      void lateSidecar.then((s) => sidecars.push(s), () => undefined); // stopped by after(), whatever happens here
      await waitFor('the late sidecar waiting for its agent', async () =>
        /local agent not registered/.test(await (await fetch(`http://127.0.0.1:${lateAdmin}/readyz`)).text()), 30_000, 100);

      // Kill the node leading the registry bucket's stream: the worst one to lose.
      leader = (await jsm.streams.info(`KV_${bucket}`)).cluster?.leader;
      victim = cluster.nodes.findIndex((n) => n.name === leader);
      assert.ok(victim >= 0, `stream leader ${leader ?? '?'} is a node of the cluster`);
      killedAt = Date.now();
      await cluster.kill(victim);
      const okAtKill = ok;
      const elected = waitFor('a new leader of the registry stream', async () => {
        const now = (await jsm.streams.info(`KV_${bucket}`)).cluster?.leader;
        return now && now !== leader ? Date.now() - killedAt : undefined;
      }, 30_000, 100);
      elected.catch(() => undefined); // awaited below
      const committed = firstCommit(killedAt);

      // A registration during the failover: the late agent starts listening now.
      agents.push(await serveAgent({ name: 'late', port: latePort ?? 0, executor: echoExecutor() }));
      const stored = waitFor('the late agent\'s record in the stream', async () => (await lastWrite('late')) || undefined, 30_000, 100);
      stored.catch(() => undefined); // awaited below
      heartbeatMs = await waitFor('a heartbeat of alpha written after the kill', async () => {
        const at = await lastWrite('alpha');
        return at > killedAt ? at - killedAt : undefined;
      }, 30_000, 100);
      await lateSidecar;
      await waitForAgent(me, 'late');
      registrationMs = Date.now() - killedAt;
      storedMs = (await stored) - killedAt;
      electedMs = await elected;
      commitMs = await committed;
      await waitFor('calls after the kill', () => ok >= okAtKill + 20, 20_000);
    } finally {
      stop = true;
      await load;
      if (victim >= 0) await cluster.start(victim);
    }
    console.log(`# one node of three killed (the stream leader ${leader ?? '?'}): new stream leader after ${electedMs} ms, first write committed after ${commitMs} ms, `
      + `first heartbeat of alpha stored ${heartbeatMs} ms after the kill; a new agent's record stored after ${storedMs} ms, visible to the caller ${registrationMs} ms after; `
      + `${ok} calls, ${failures.length} failed`);
    assert.deepEqual(failures, [], 'no call failed');
    assert.equal(invisible, 0, 'alpha never left the caller\'s view');
    assert.ok(heartbeatMs < RECOVERY_MS, `heartbeats recovered in ${heartbeatMs} ms (leader after ${electedMs} ms)`);
    assert.ok(heartbeatMs - commitMs < OUR_PART_MS,
      `the first heartbeat ${heartbeatMs - commitMs} ms after the stream took writes again (commit ${commitMs} ms, heartbeat ${heartbeatMs} ms after ${new Date(killedAt).toISOString()})\n${alphaLog()}`);
    assert.ok(registrationMs < RECOVERY_MS, `a registration took ${registrationMs} ms (leader after ${electedMs} ms)`);
    const keysAfter = new Set(await keys());
    assert.deepEqual([...keysBefore].filter((k) => !keysAfter.has(k)), [], 'no record lost');
    assert.ok([...keysAfter].some((k) => k.startsWith('agents.late.')));

    await cluster.waitForMetaLeader();
    await waitFor('the restarted node current on the bucket', async () =>
      ((await jsm.streams.info(`KV_${bucket}`)).cluster?.replicas ?? []).filter((r) => r.current).length === 2, 30_000, 200);
  });

  test('two nodes down: calls route from the cache, writes fail cleanly, and all recovers with the quorum', async () => {
    const [alpha, me] = sidecars;
    assert.ok(alpha && me);
    const mesh = connectMesh({ url: me.outbound });
    const down = [0, 1];
    for (const i of down) await cluster.kill(i);
    const lostAt = Date.now();

    const degraded = await waitFor('alpha\'s sidecar to report failing registry writes', async () => {
      const r = await readyz(alpha);
      return r.status === 503 && /registry/.test(r.body) ? r : undefined;
    }, 30_000, 200);
    console.log(`# quorum lost: alpha's /readyz 503 after ${Date.now() - lostAt} ms: ${degraded.body.replaceAll('\n', ' ')}`);
    // The caller, which writes nothing, sees that the stream has no leader, or one that has not heard
    // from its replicas lately (nats-server keeps such a leader for 10–20 s): its records stop ageing.
    await waitFor('the caller to report the registry unreachable', async () => {
      const r = await readyz(me);
      return r.status === 503 && /registry \(nats\) unreachable/.test(r.body);
    }, 30_000, 200);
    const noticedMs = Date.now() - lostAt;
    // Longer than the TTL (12 s) without a heartbeat landing: the caller keeps routing from its view.
    let calls = 0;
    while (Date.now() - lostAt < 18_000 || calls < 10) {
      const reply = await mesh.send('alpha', `dark ${calls}`);
      assert.equal('parts' in reply ? textOf(reply.parts) : '', `echo: dark ${calls}`);
      calls++;
      await delay(100);
    }
    assert.ok(Date.now() - lostAt > 12_000, 'calls went on for longer than the TTL');
    assert.equal(alpha.process.exitCode, null, 'the sidecar did not crash');
    assert.equal(me.process.exitCode, null, 'the caller did not crash');

    const backAt = Date.now();
    for (const i of down) await cluster.start(i);
    // nats-server's part: a stream leader that has heard from a replica lately.
    const elected = waitFor('a leader of the registry stream with a quorum', async () => {
      const info = (await jsm.streams.info(`KV_${bucket}`)).cluster;
      return info?.leader && !quorumLoss(info) ? Date.now() - backAt : undefined;
    }, 60_000, 100);
    elected.catch(() => undefined); // awaited below; not unhandled if a step before fails
    const committed = firstCommit(backAt);
    // nats-server's part too: a watch (a consumer) needs the JetStream meta leader, which may come later than the stream's.
    await cluster.waitForMetaLeader(60_000);
    const metaMs = Date.now() - backAt;
    // The product's read path: a heartbeat alpha wrote after the quorum returned, in the caller's view.
    const fresh = async (): Promise<number | undefined> => {
      const body = await (await fetch(`${me.outbound}/registry/agents?name=alpha`)).json() as { agents: { instances: { heartbeatAt: string }[] }[] };
      const at = Math.max(0, ...body.agents.flatMap((a) => a.instances.map((i) => Date.parse(i.heartbeatAt))));
      return at > backAt ? at - backAt : undefined;
    };
    const seenMs = await waitFor('a heartbeat of alpha written after the quorum returned, in the caller\'s view', fresh, 60_000, 200)
      .catch(async (err: unknown) => {
        const info = await jsm.streams.info(`KV_${bucket}`).then((i) => JSON.stringify({ cluster: i.cluster, state: i.state }), (e: unknown) => String(e));
        throw new Error(`${String(err)}\nstream: ${info}\n${alphaLog()}\nthe caller's sidecar:\n${me.output().slice(-3000)}`);
      });
    const seenAt = Date.now() - backAt;
    // Where the stream leader answers reads (nats-server 2.9 once did not for a minute after the quorum returned), when it stored that heartbeat.
    const storedMs = await waitFor('alpha\'s heartbeat read from the stream leader', async () => {
      const at = await lastWrite('alpha');
      return at > backAt ? at - backAt : undefined;
    }, 10_000, 200).catch(() => -1);
    const electedMs = await elected.catch(() => -1);
    const commitMs = await committed;
    // Ours: from when the cluster takes writes and consumers again to a fresh heartbeat in the caller's
    // view (alpha's retried heartbeat, the caller's watch restarted, the 200 ms poll).
    const serverMs = Math.max(commitMs, metaMs);
    assert.ok(seenAt - serverMs < OUR_PART_MS + VIEW_MS,
      `a fresh heartbeat in the caller's view ${seenAt - serverMs} ms after the cluster took writes and consumers again (stream leader ${electedMs} ms, commit ${commitMs} ms, meta leader ${metaMs} ms, heartbeat written at ${seenMs} ms, seen at ${seenAt} ms after ${new Date(backAt).toISOString()})\n${alphaLog()}`);
    await waitFor('both sidecars ready again', async () => (await readyz(alpha)).status === 200 && (await readyz(me)).status === 200, 30_000, 200);
    const readyMs = Date.now() - backAt;
    const reply = await mesh.send('alpha', 'after');
    assert.equal('parts' in reply ? textOf(reply.parts) : '', 'echo: after');
    console.log(`# quorum lost: the caller's /readyz 503 after ${noticedMs} ms; quorum back (nodes restarted): stream leader after ${electedMs} ms, `
      + `first write committed after ${commitMs} ms, meta leader after ${metaMs} ms, first heartbeat of alpha written at ${seenMs} ms (stored ${storedMs} ms, read from the leader; in the caller's view at ${seenAt} ms), `
      + `/readyz 200 after ${readyMs} ms`);
  });
});
