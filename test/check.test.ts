// `agentmesh check` finds each misconfiguration with a ✖ (or ⚠) line naming the config key: missing or
// expired certificate, wrong trust domain, an agent name the identity does not own, NATS unreachable or
// without auth, a port in use, an agent card that does not load. Real PKI, nats-server, sockets, agents.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { parseArgs } from '../sidecar/cli/args.ts';
import { runCheck } from '../sidecar/cli/check.ts';
import type { CheckResult } from '../sidecar/cli/check-result.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { createTestPki, type IdentityFiles, type TestPki } from './support/certs.ts';
import { startNatsServer, type NatsServer } from './support/nats-server.ts';
import { runCli } from './support/sidecar-process.ts';

const TD = 'check.test';

describe('agentmesh check', () => {
  let pki: TestPki;
  let dir: string;
  let alice: IdentityFiles;
  let agent: AgentServer;
  let n = 0;

  before(async () => {
    pki = await createTestPki({ trustDomain: TD });
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-check-'));
    alice = await pki.issue(`spiffe://${TD}/agent/alice`);
    agent = await serveAgent({ name: 'alice', executor: echoExecutor() });
  });
  after(async () => {
    await agent?.close();
    await pki?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs check on a config made of a working base (alice, ports 0, embedded registry) and `over`. */
  async function check(over: Record<string, unknown> = {}): Promise<{ code: number; results: CheckResult[] }> {
    const config = {
      identity: alice,
      listen: { outbound: '127.0.0.1:0', inbound: '127.0.0.1:0', admin: '127.0.0.1:0' },
      registry: { dir: join(dir, 'registry') },
      agent: { url: agent.url, name: 'alice' },
      ...over,
    };
    const path = join(dir, `c${n++}.yaml`);
    writeFileSync(path, stringify(config));
    const lines: string[] = [];
    const code = await runCheck(parseArgs(['check', '--config', path, '--json', '--timeout', '1s'], new Set(['json'])), { out: (l) => lines.push(l), env: {}, signal: new AbortController().signal });
    const parsed = JSON.parse(lines.join('\n')) as { ok: boolean; results: CheckResult[] };
    assert.equal(parsed.ok, code === 0);
    return { code, results: parsed.results };
  }
  const find = (results: CheckResult[], key: string, status: CheckResult['status']) => results.find((r) => r.key === key && r.status === status);

  test('a working setup is all ✔ and exits 0', async () => {
    const { code, results } = await check();
    assert.equal(code, 0, JSON.stringify(results, null, 2));
    assert.ok(find(results, 'agent.url', 'ok'));
    assert.ok(find(results, 'agent.name', 'ok'));
    assert.ok(find(results, 'identity.bundle', 'ok'));
  });

  test('a missing certificate file', async () => {
    const { code, results } = await check({ identity: { ...alice, cert: join(dir, 'nope.pem') } });
    assert.equal(code, 1);
    assert.match(find(results, 'identity.cert', 'fail')?.message ?? '', /cannot read .*nope\.pem \(ENOENT\)/);
    assert.ok(find(results, 'identity.cert', 'fail')?.hint);
  });

  test('an expired certificate', async () => {
    const expired = await pki.issue(`spiffe://${TD}/agent/alice`, { notBefore: new Date(Date.now() - 48 * 3_600_000), notAfter: new Date(Date.now() - 3_600_000) });
    const { code, results } = await check({ identity: expired });
    assert.equal(code, 1);
    assert.match(find(results, 'identity.cert', 'fail')?.message ?? '', /^expired /);
  });

  test('a certificate from another trust domain', async () => {
    const other = await createTestPki({ trustDomain: 'other.test' });
    try {
      const files = await other.issue('spiffe://other.test/agent/alice');
      const { code, results } = await check({ identity: { ...files, trustDomain: TD } });
      assert.equal(code, 1);
      assert.match(find(results, 'identity.trustDomain', 'fail')?.message ?? '', /trust domain 'other\.test', not 'check\.test'/);
    } finally {
      await other.close();
    }
  });

  test('an agent name the identity does not own', async () => {
    const { code, results } = await check({ agent: { url: agent.url, name: 'bob' } });
    assert.equal(code, 1);
    assert.match(find(results, 'agent.name', 'fail')?.message ?? '', /does not own the agent name 'bob'/);
  });

  test("an agent name the policy's registrations grant to the identity", async () => {
    const policy = join(dir, 'registrations.yaml');
    writeFileSync(policy, `registrations:\n  - { identity: "spiffe://${TD}/agent/alice", agents: [bob] }\n`);
    const { results } = await check({ agent: { url: agent.url, name: 'bob' }, policy: { file: policy } });
    assert.match(find(results, 'agent.name', 'ok')?.message ?? '', /'bob' is granted to /);
  });

  test('NATS unreachable', async () => {
    const port = await closedPort();
    const { code, results } = await check({ registry: { nats: `nats://127.0.0.1:${port}` } });
    assert.equal(code, 1);
    assert.match(find(results, 'registry.nats', 'fail')?.message ?? '', /cannot reach NATS/);
  });

  test('NATS without auth is warned', async () => {
    const nats: NatsServer = await startNatsServer();
    try {
      const { results } = await check({ registry: { nats: nats.url, bucket: `chk${process.pid}` } });
      assert.match(find(results, 'registry.nats', 'warn')?.message ?? '', /without TLS client certificates or credentials/);
      assert.ok(find(results, 'registry.nats', 'ok'), 'and it is reachable');
    } finally {
      await nats.stop();
    }
  });

  test('a port in use', async () => {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const { code, results } = await check({ listen: { outbound: '127.0.0.1:0', inbound: '127.0.0.1:0', admin: `127.0.0.1:${port}` } });
      assert.equal(code, 1);
      assert.match(find(results, 'listen.admin', 'fail')?.message ?? '', new RegExp(`127\\.0\\.0\\.1:${port} is already in use`));
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('an agent card that does not load', async () => {
    const port = await closedPort();
    const { code, results } = await check({ agent: { url: `http://127.0.0.1:${port}`, name: 'alice' } });
    assert.equal(code, 1);
    assert.match(find(results, 'agent.url', 'fail')?.message ?? '', /the agent card does not load/);
  });

  test('a policy file that does not parse', async () => {
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, 'rules: [ { nonsense: true } ]\n');
    const { code, results } = await check({ policy: { file: policy } });
    assert.equal(code, 1);
    assert.match(find(results, 'policy.file', 'fail')?.message ?? '', /policy/);
    const missing = await check({ policy: { file: join(dir, 'no-policy.yaml') } });
    assert.match(find(missing.results, 'policy.file', 'fail')?.message ?? '', /cannot read .*no-policy\.yaml \(ENOENT\)/);
  });

  test('as a command: ✖ lines with hints, exit 1', async () => {
    const path = join(dir, 'cli.yaml');
    writeFileSync(path, stringify({ identity: { ...alice, cert: join(dir, 'gone.pem') }, listen: { outbound: '127.0.0.1:0', inbound: '127.0.0.1:0', admin: '127.0.0.1:0' }, registry: { dir: join(dir, 'registry') } }));
    const { code, stdout } = await runCli(['check', '--config', path]);
    assert.equal(code, 1);
    assert.match(stdout, /^✖ identity\.cert: cannot read .*gone\.pem/m);
    assert.match(stdout, /^ {4}hint: /m);
    assert.match(stdout, /^✔ config: valid/m);
  });
});

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
