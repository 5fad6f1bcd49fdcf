// The registry diagnostics bridge: this sidecar's NATS connection and records only, heartbeat
// failures once per run with a count, and nothing after unsubscribing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { channel } from 'node:diagnostics_channel';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { REGISTRY_CHANNEL, type RegistryEvent } from '../registry/index.ts';
import { bridgeDiagnostics } from './log.ts';

test('bridged registry events: own connection and keys only, heartbeat failures once per run', async () => {
  const lines: { msg: string; failures?: number; key?: string }[] = [];
  const stream = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString()) as { msg: string }); done(); } });
  const off = bridgeDiagnostics(pino({ level: 'info' }, stream), { connection: 'agentmesh-sidecar-i1', instance: 'i1' });
  const publish = (event: RegistryEvent) => channel(REGISTRY_CHANNEL).publish(event);
  publish({ type: 'disconnect', backend: 'nats', server: 'nats://x', connection: 'agentmesh-sidecar-other' });
  publish({ type: 'disconnect', backend: 'nats', server: 'nats://x', connection: 'agentmesh-sidecar-i1' });
  for (let i = 0; i < 100; i++) {
    publish({ type: 'heartbeat-failed', backend: 'nats', key: 'agents.echo.i1', error: 'timeout' });
    publish({ type: 'heartbeat-failed', backend: 'nats', key: 'agents.echo.other', error: 'timeout' });
  }
  publish({ type: 'reconnect', backend: 'nats', server: 'nats://x', connection: 'agentmesh-sidecar-i1' });
  publish({ type: 'heartbeat-recovered', backend: 'nats', key: 'agents.echo.i1', failures: 100 });
  off();
  off();
  publish({ type: 'disconnect', backend: 'nats', server: 'nats://x', connection: 'agentmesh-sidecar-i1' });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(lines.map((l) => l.msg), [
    'registry: lost the NATS connection; routing from the cached view while it reconnects',
    'registry heartbeat failing',
    'registry: NATS connection is back',
    'registry heartbeat recovered after 100 failures',
  ]);
  assert.equal(lines[1]?.key, 'agents.echo.i1');
  assert.equal(lines[3]?.failures, 100);
});
