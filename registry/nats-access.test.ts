// The "no doors" warning and the servers list of registry.nats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { natsAccessWarning, natsServers } from './nats-access.ts';

test('registry.nats: one URL, comma-separated URLs, or a list', () => {
  assert.deepEqual(natsServers('nats://a:4222'), ['nats://a:4222']);
  assert.deepEqual(natsServers('nats://a:4222, nats://b:4222,'), ['nats://a:4222', 'nats://b:4222']);
  assert.deepEqual(natsServers(['nats://a:4222', 'nats://b:4222']), ['nats://a:4222', 'nats://b:4222']);
});

test('anonymous NATS gets a warning naming the keys that fix it; TLS or credentials do not', () => {
  const warning = natsAccessWarning('nats://127.0.0.1:4222');
  assert.match(warning ?? '', /nats:\/\/127\.0\.0\.1:4222 .*without TLS client certificates or credentials \(registry\.tls, registry\.credentials\)/);
  assert.equal(natsAccessWarning('nats://h:4222', { credentials: '/x.creds' }), undefined);
  assert.equal(natsAccessWarning('nats://h:4222', { tls: { current: () => ({ certPem: 'c', keyPem: 'k', bundlePem: 'b' }) } }), undefined);
  assert.equal(natsAccessWarning('nats://u:p@h:4222'), undefined);
});
