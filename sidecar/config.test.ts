// Config resolution: defaults, precedence (file < environment < flags), durations and sizes, and
// errors that name the key path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envName, parseDuration, parseSize, resolveConfig } from './config.ts';
import { isMeshError } from '../sdk/index.ts';

const identity = { trustDomain: 'mesh.local', cert: 'c.pem', key: 'k.pem', bundle: 'b.pem' };

test('defaults follow DESIGN.md', () => {
  const c = resolveConfig({ file: { identity } });
  assert.deepEqual(c.listen.outbound, { host: '127.0.0.1', port: 15001 });
  assert.deepEqual(c.listen.inbound, { host: '0.0.0.0', port: 15443 });
  assert.deepEqual(c.listen.admin, { host: '127.0.0.1', port: 15090 });
  assert.equal(c.registry.ttl, 15_000);
  assert.equal(c.registry.bucket, 'agentmesh');
  assert.equal(c.limits.maxBody, 4 * 1024 * 1024);
  assert.equal(c.agent, undefined);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.listen));
});

test('flags win over the environment, which wins over the file', () => {
  const c = resolveConfig({
    file: { identity, registry: { ttl: '30s', bucket: 'fromfile' } },
    env: { AGENTMESH_REGISTRY_TTL: '20s', AGENTMESH_REGISTRY_BUCKET: 'fromenv', AGENTMESH_IDENTITY_TRUST_DOMAIN: 'env.local' },
    flags: { 'registry.ttl': '10s' },
  });
  assert.equal(c.registry.ttl, 10_000);
  assert.equal(c.registry.bucket, 'fromenv');
  assert.equal(c.identity.trustDomain, 'env.local');
});

test('environment variable names are the key path in SNAKE_CASE', () => {
  assert.equal(envName('identity.trustDomain'), 'AGENTMESH_IDENTITY_TRUST_DOMAIN');
  assert.equal(envName('listen.outbound'), 'AGENTMESH_LISTEN_OUTBOUND');
  assert.equal(envName('limits.maxBody'), 'AGENTMESH_LIMITS_MAX_BODY');
});

test('durations and sizes', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('15s'), 15_000);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('24h'), 86_400_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('soon'), undefined);
  assert.equal(parseSize('4MiB'), 4 * 1024 * 1024);
  assert.equal(parseSize('64KiB'), 65_536);
  assert.equal(parseSize(1000), 1000);
  assert.equal(parseSize('lots'), undefined);
});

test('every problem is reported with its key path', () => {
  assert.throws(
    () => resolveConfig({ file: { identity: { ...identity, trustDomain: 'UPPER' }, listen: { admin: '127.0.0.1:99999' }, agent: { url: 'ftp://x' }, extra: 1 } }),
    (err: unknown) => isMeshError(err, 'CONFIG_INVALID')
      && /identity\.trustDomain/.test(err.message)
      && /listen\.admin: expected host:port/.test(err.message)
      && /agent\.url/.test(err.message)
      && /Unrecognized key: "extra"/.test(err.message),
  );
  assert.throws(() => resolveConfig({ file: {} }), /identity: /);
  assert.throws(() => resolveConfig({ file: [] }), /expected a mapping/);
  assert.throws(() => resolveConfig({ file: { identity }, flags: { 'no.such': '1' } }), /--no\.such: unknown config key/);
});

test('resilience policies: named, chosen per target, unknown names refused', async () => {
  const { targetBreaker, targetRetry, targetTimeout } = await import('./config.ts');
  const c = resolveConfig({
    file: {
      identity,
      resilience: {
        defaults: { timeout: '20s' },
        policies: { retries: { none: { maxAttempts: 1 } }, breakers: { strict: { consecutiveFailures: 2, resetTimeout: '5s' } } },
        targets: { researcher: { timeout: '2m', retry: 'none', breaker: 'strict' } },
      },
    },
  });
  assert.equal(targetTimeout(c, 'researcher'), 120_000);
  assert.equal(targetTimeout(c, 'other'), 20_000);
  assert.equal(targetRetry(c, 'researcher').maxAttempts, 1);
  assert.equal(targetRetry(c, 'other').maxAttempts, 3);
  assert.equal(targetRetry(c, 'other').budgetRatio, 0.2);
  assert.deepEqual([targetBreaker(c, 'researcher').consecutiveFailures, targetBreaker(c, 'researcher').resetTimeout], [2, 5000]);
  assert.equal(targetBreaker(c, 'other').volumeThreshold, 5);
  assert.throws(
    () => resolveConfig({ file: { identity, resilience: { targets: { x: { retry: 'sometimes' } } } } }),
    /resilience\.targets\.x\.retry: no retry policy named 'sometimes'/,
  );
});

test('registry.tls and registry.credentials: env/flag strings, and both need registry.nats', () => {
  const c = resolveConfig({
    file: { identity },
    env: { AGENTMESH_REGISTRY_NATS: 'nats://a:4222,nats://b:4222', AGENTMESH_REGISTRY_TLS: 'true' },
    flags: { 'registry.credentials': '/etc/agentmesh/nats.creds' },
  });
  assert.equal(c.registry.tls, true);
  assert.equal(c.registry.credentials, '/etc/agentmesh/nats.creds');
  assert.equal(resolveConfig({ file: { identity } }).registry.tls, false);
  assert.deepEqual(resolveConfig({ file: { identity, registry: { nats: ['nats://a:4222', 'nats://b:4222'] } } }).registry.nats, ['nats://a:4222', 'nats://b:4222']);
  assert.throws(() => resolveConfig({ file: { identity, registry: { tls: 'yes', nats: 'nats://a:4222' } } }),
    (err: Error) => /registry\.tls: expected true or false/.test(err.message));
  assert.throws(() => resolveConfig({ file: { identity, registry: { tls: true, credentials: 'x.creds' } } }),
    (err: Error) => /registry\.tls: needs registry\.nats/.test(err.message) && /registry\.credentials: needs registry\.nats/.test(err.message));
});

test('listen.outbound takes unix:/path; anything else odd is named', () => {
  assert.deepEqual(resolveConfig({ file: { identity, listen: { outbound: 'unix:/run/agentmesh/out.sock' } } }).listen.outbound, { path: '/run/agentmesh/out.sock' });
  assert.deepEqual(resolveConfig({ file: { identity }, flags: { 'listen.outbound': '[::1]:0' } }).listen.outbound, { host: '::1', port: 0 });
  assert.throws(() => resolveConfig({ file: { identity, listen: { outbound: 'unix:relative.sock' } } }), (err: unknown) =>
    isMeshError(err) && err.code === 'CONFIG_INVALID' && /listen\.outbound: expected host:port .* or unix:\/absolute\/path/.test(err.message));
});

test('hop.dropHeaders: header names, lowercased later; empty by default', () => {
  assert.deepEqual(resolveConfig({ file: { identity } }).hop.dropHeaders, []);
  assert.deepEqual(resolveConfig({ file: { identity, hop: { dropHeaders: ['X-Tenant-Token'] } } }).hop.dropHeaders, ['X-Tenant-Token']);
  assert.throws(() => resolveConfig({ file: { identity, hop: { dropHeaders: ['bad header'] } } }), /hop\.dropHeaders\.0: expected an HTTP header name/);
});

test('mcp.sessionIdleTimeout: 10 minutes by default, at least 1s, named when wrong', () => {
  assert.equal(resolveConfig({ file: { identity } }).mcp.sessionIdleTimeout, 600_000);
  assert.equal(resolveConfig({ file: { identity }, flags: { 'mcp.sessionIdleTimeout': '90s' } }).mcp.sessionIdleTimeout, 90_000);
  for (const bad of ['500ms', 'soon']) {
    assert.throws(() => resolveConfig({ file: { identity, mcp: { sessionIdleTimeout: bad } } }),
      (err: unknown) => isMeshError(err, 'CONFIG_INVALID') && /mcp\.sessionIdleTimeout/.test(err.message));
  }
});

test('agent health check: defaults, flags, and bad values named by key', () => {
  const c = resolveConfig({ file: { identity, agent: { url: 'http://127.0.0.1:8001' } } });
  assert.equal(c.agent?.healthInterval, 5000);
  assert.equal(c.agent?.healthTimeout, 2000);
  assert.equal(c.agent?.healthThreshold, 3);
  const f = resolveConfig({
    file: { identity, agent: { url: 'http://127.0.0.1:8001' } },
    env: { AGENTMESH_AGENT_HEALTH_THRESHOLD: '5' }, flags: { 'agent.healthInterval': '0s' },
  });
  assert.equal(f.agent?.healthInterval, 0);
  assert.equal(f.agent?.healthThreshold, 5);
  assert.throws(
    () => resolveConfig({ file: { identity, agent: { url: 'http://127.0.0.1:8001', healthInterval: '10ms', healthTimeout: 'soon', healthThreshold: 0 } } }),
    (err: unknown) => isMeshError(err, 'CONFIG_INVALID')
      && /agent\.healthInterval: expected 0s \(off\) or at least 100ms/.test(err.message)
      && /agent\.healthTimeout: expected a duration/.test(err.message)
      && /agent\.healthThreshold/.test(err.message),
  );
});
