// The nats-server config `agentmesh nats config` prints: users named by SPIFFE ID, each allowed its
// own keys and the KV read/watch API only, stream changes denied, the admin unrestricted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { natsServerConfig, parseAgentFlag, parseGrantFlag, renderNatsConfig } from './server-config.ts';
import { isMeshError } from '../../sdk/index.ts';

const agent = (value: string) => parseAgentFlag(value, 'mesh.local');
const base = { trustDomain: 'mesh.local', bucket: 'agentmesh', serverCert: '/s.pem', serverKey: '/s-key.pem', bundle: '/ca.pem' };

test('each agent identity may publish only its own keys, its MCP servers and the KV read API', () => {
  const config = natsServerConfig({ ...base, grants: [agent('alpha'), agent('beta=search, files')] });
  assert.deepEqual(config.tls, { cert_file: '/s.pem', key_file: '/s-key.pem', ca_file: '/ca.pem', verify_and_map: true, timeout: 5 });
  const [alpha, beta, admin] = config.authorization.users;
  assert.equal(alpha?.user, 'spiffe://mesh.local/agent/alpha');
  assert.equal(beta?.user, 'spiffe://mesh.local/agent/beta');
  assert.deepEqual(admin, { user: 'spiffe://mesh.local/admin' });
  const allow = beta?.permissions?.publish.allow ?? [];
  for (const subject of ['$KV.agentmesh.agents.beta.>', '$KV.agentmesh.mcp.search.>', '$KV.agentmesh.mcp.files.>', '$KV.agentmesh-tasks.>',
    '$JS.API.STREAM.INFO.KV_agentmesh', '$JS.API.DIRECT.GET.KV_agentmesh.>', '$JS.API.CONSUMER.CREATE.KV_agentmesh.>', '$JS.FC.KV_agentmesh.>']) {
    assert.ok(allow.includes(subject), subject);
  }
  assert.ok(!allow.some((s) => s.includes('agents.alpha') || s === '$KV.agentmesh.>' || s.startsWith('$JS.API.STREAM.PURGE')));
  assert.ok(!(alpha?.permissions?.publish.allow ?? []).some((s) => s.includes('.mcp.')));
  for (const denied of ['$JS.API.STREAM.PURGE.>', '$JS.API.STREAM.DELETE.>', '$JS.API.STREAM.CREATE.>', '$JS.API.STREAM.UPDATE.>', '$JS.API.STREAM.MSG.DELETE.>']) {
    assert.ok(beta?.permissions?.publish.deny.includes(denied), denied);
  }
  assert.deepEqual(beta?.permissions?.subscribe.allow, ['_INBOX.>']);
});

test('the printed file is comments and JSON, which nats-server reads as its config format', () => {
  const config = natsServerConfig({ ...base, bucket: 'mesh-1', grants: [agent('a')], admin: 'spiffe://mesh.local/ops/nats-admin', listen: '127.0.0.1:4333', storeDir: '/var/lib/nats' });
  const text = renderNatsConfig(config, ['line one']);
  assert.match(text, /^# line one\n\{/);
  assert.deepEqual(JSON.parse(text.slice(text.indexOf('{'))), config);
  assert.equal(config.listen, '127.0.0.1:4333');
  assert.equal(config.jetstream.store_dir, '/var/lib/nats');
  assert.equal(config.authorization.users.at(-1)?.user, 'spiffe://mesh.local/ops/nats-admin');
  assert.ok(config.authorization.users[0]?.permissions?.publish.allow.includes('$KV.mesh-1.agents.a.>'));
});

test('--grant adds names granted to an identity (any path in the trust domain); grants for one ID merge', () => {
  const config = natsServerConfig({ ...base, grants: [
    agent('researcher=search'),
    parseGrantFlag('spiffe://mesh.local/agent/researcher=agent:researcher-eu,mcp:stats'),
    parseGrantFlag('spiffe://mesh.local/team/ops=mcp:pager'),
  ] });
  const [researcher, ops] = config.authorization.users;
  assert.equal(config.authorization.users.length, 3);
  assert.equal(researcher?.user, 'spiffe://mesh.local/agent/researcher');
  const allow = researcher?.permissions?.publish.allow ?? [];
  for (const s of ['$KV.agentmesh.agents.researcher.>', '$KV.agentmesh.agents.researcher-eu.>', '$KV.agentmesh.mcp.search.>', '$KV.agentmesh.mcp.stats.>']) assert.ok(allow.includes(s), s);
  assert.equal(ops?.user, 'spiffe://mesh.local/team/ops');
  assert.ok(ops?.permissions?.publish.allow.includes('$KV.agentmesh.mcp.pager.>'));
  assert.ok(!ops?.permissions?.publish.allow.some((s) => s.includes('.agents.')));
});

test('bad input is refused naming the flag', () => {
  const refused = (options: Partial<Parameters<typeof natsServerConfig>[0]>, flag: RegExp) => assert.throws(
    () => natsServerConfig({ ...base, grants: [agent('a')], ...options }),
    (err: unknown) => isMeshError(err) && err.code === 'CONFIG_INVALID' && flag.test(err.message));
  refused({ grants: [] }, /--agent/);
  refused({ grants: [agent('a.b')] }, /--agent\/--grant: 'a\.b'/);
  refused({ grants: [agent('a=x>')] }, /--agent\/--grant: 'x>'/);
  refused({ grants: [parseGrantFlag('spiffe://other.domain/agent/a=agent:a')] }, /--grant: .*trust domain/);
  refused({ grants: [parseGrantFlag('spiffe://mesh.local/admin=agent:a')] }, /--grant: .* is the admin/);
  assert.throws(() => parseGrantFlag('spiffe://mesh.local/agent/a'), /--grant: expected ID=agent:NAME,mcp:SERVER/);
  assert.throws(() => parseGrantFlag('spiffe://mesh.local/agent/a=tool:x'), /--grant: expected agent:NAME or mcp:SERVER, got 'tool:x'/);
  refused({ bucket: 'a.b' }, /--bucket/);
  refused({ admin: 'spiffe://other.domain/admin' }, /--admin: .*trust domain/);
  refused({ trustDomain: 'Bad Domain' }, /--trust-domain/);
});
