// What /api/state and the start-up log show of a config: no join token, no credentials in URLs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig } from './config.ts';
import { redactConfig, redactUrl } from './rotation.ts';

test('URLs lose user info and query; plain ones are unchanged', () => {
  assert.equal(redactUrl('https://collector:4318/v1/traces'), 'https://collector:4318/v1/traces');
  assert.equal(redactUrl('https://user:s3cret@collector/v1/traces?api_key=k'), 'https://redacted@collector/v1/traces?redacted');
  assert.equal(redactUrl('nats://alice:pw@10.0.0.1:4222'), 'nats://redacted@10.0.0.1:4222');
  assert.equal(redactUrl('not a url ?token=x'), '[redacted]');
});

test('the config shown has no token, collector credential or NATS password', () => {
  const config = resolveConfig({ file: {
    identity: { trustDomain: 'mesh.test', token: 'one-time-join-token', ca: 'https://127.0.0.1:9443', bundle: 'b.pem' },
    agent: { name: 'alpha', url: 'http://127.0.0.1:9000' },
    registry: { nats: ['nats://alice:pw1@127.0.0.1:4222', 'nats://127.0.0.1:4223'] },
    telemetry: { enabled: true, endpoint: 'https://u:collector-secret@otel.example/v1/traces?key=k2' },
  } });
  const shown = JSON.stringify(redactConfig(config));
  for (const secret of ['one-time-join-token', 'pw1', 'collector-secret', 'k2']) assert.ok(!shown.includes(secret), `${secret} not shown`);
  assert.match(shown, /nats:\/\/127\.0\.0\.1:4223/);
});

test('the config shown has no MCP server credential: stdio env values and HTTP server URLs with user info or query', () => {
  const config = resolveConfig({ file: {
    identity: { trustDomain: 'mesh.test', cert: 'c.pem', key: 'k.pem', bundle: 'b.pem' },
    agent: { url: 'http://u:agent-secret@127.0.0.1:9000' },
    mcp: { servers: [
      { name: 'gh', command: ['gh-mcp'], env: { GITHUB_TOKEN: 'ghp_stdio-secret' } },
      { name: 'search', url: 'http://127.0.0.1:7000/mcp?api_key=query-secret' },
    ] },
  } });
  const shown = redactConfig(config);
  const text = JSON.stringify(shown);
  for (const secret of ['ghp_stdio-secret', 'query-secret', 'agent-secret']) assert.ok(!text.includes(secret), `${secret} not shown`);
  assert.match(text, /GITHUB_TOKEN/, 'the variable names stay');
  assert.equal(config.mcp.servers.length, 2, 'the config itself is untouched');
  assert.ok(JSON.stringify(config).includes('ghp_stdio-secret'));
});
