// `agentmesh run --config F -- CMD …` on real processes: the agent it starts is reachable through the
// mesh with AGENTMESH_URL pointing at the outbound listener; SIGTERM stops both and deregisters; the
// agent's exit code becomes run's and stops the sidecar; a bad config fails before the agent starts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { connectMesh, textOf } from '../sdk/index.ts';
import { freePort } from './support/free-port.ts';
import { createTestMesh, waitForAgent, waitForAgentGone, type TestMesh } from './support/mesh.ts';
import { CLI, ROOT, type SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

const AGENT = join(ROOT, 'test/support/run-agent-child.ts');

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

describe('agentmesh run', () => {
  let mesh: TestMesh;
  let me: SidecarProcess;
  let dir: string;
  const started: { kill(signal: NodeJS.Signals): boolean }[] = [];

  before(async () => {
    // A long TTL: an agent gone within seconds was withdrawn, not expired.
    mesh = await createTestMesh({ backend: 'embedded', ttl: '60s' });
    me = await mesh.sidecar('me');
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-run-'));
  });
  after(async () => {
    for (const child of started) child.kill('SIGKILL');
    await mesh?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Starts `agentmesh run` for agent `name` with `config` overrides; the agent command is run-agent-child.ts. */
  async function launch(name: string, extra: Record<string, unknown> = {}, command?: string[]) {
    const port = await freePort();
    const config = join(dir, `${name}.yaml`);
    const ready = join(dir, `${name}-ready.json`);
    const info = join(dir, `${name}-agent.json`);
    writeFileSync(config, stringify({
      agent: { url: `http://127.0.0.1:${port}` }, registry: mesh.registry,
      identity: await mesh.pki.issue(`spiffe://${mesh.trustDomain}/agent/${name}`),
      listen: { outbound: '127.0.0.1:0', inbound: '127.0.0.1:0', admin: '127.0.0.1:0' }, log: { level: 'warn' }, ...extra,
    }));
    const child = spawn(process.execPath, [CLI, 'run', '--config', config, '--ready-file', ready, '--',
      ...(command ?? [process.execPath, '--import', 'tsx', AGENT, String(port), name, info])], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    started.push(child);
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const readJson = <T>(file: string) => () => {
      if (child.exitCode !== null) throw new Error(`agentmesh run exited with ${child.exitCode}:\n${output}`);
      try { return JSON.parse(readFileSync(file, 'utf8')) as T; } catch { return undefined; }
    };
    return {
      child, exited, output: () => output, info,
      ready: () => waitFor('the run ready file', readJson<{ outbound: string; admin: string }>(ready), 30_000),
      agent: () => waitFor('the agent info file', readJson<{ pid: number; meshUrl: string }>(info), 30_000),
    };
  }

  test('the agent is reachable through the mesh; SIGTERM stops both and the agent leaves the registry', async () => {
    const run = await launch('alpha');
    const agent = await run.agent();
    const addresses = await run.ready();
    assert.equal(agent.meshUrl, addresses.outbound, 'AGENTMESH_URL is the outbound listener');
    await waitForAgent(me, 'alpha');
    const reply = await connectMesh({ url: me.outbound }).send('alpha', 'hello');
    assert.equal('parts' in reply ? textOf(reply.parts) : undefined, 'echo: hello');
    // The URL the agent was given answers as its sidecar's outbound listener.
    const own = await (await fetch(`${agent.meshUrl}/registry/agents?name=alpha`)).json() as { agents: { name: string }[] };
    assert.deepEqual(own.agents.map((a) => a.name), ['alpha']);
    run.child.kill('SIGTERM');
    assert.equal(await run.exited, 0, run.output());
    assert.equal(alive(agent.pid), false, 'the agent process is gone');
    const gone = await waitForAgentGone(me, 'alpha', 10_000);
    assert.ok(gone < 10_000);
    await assert.rejects(fetch(`${addresses.admin}/readyz`), 'the sidecar stopped listening');
  });

  test('the agent exiting with 3 makes run exit with 3 and stops the sidecar', async () => {
    const run = await launch('beta');
    const agent = await run.agent();
    const addresses = await run.ready();
    await waitForAgent(me, 'beta');
    process.kill(agent.pid, 'SIGUSR2');
    assert.equal(await run.exited, 3, run.output());
    await waitForAgentGone(me, 'beta', 10_000);
    await assert.rejects(fetch(`${addresses.admin}/readyz`), 'the sidecar stopped listening');
  });

  test('a sidecar that cannot start fails run, naming the key, and the agent never starts', async () => {
    const marker = join(dir, 'gamma-started');
    const run = await launch('gamma', { registry: { ...mesh.registry, ttl: 'soon' } },
      [process.execPath, '-e', `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'started')`]);
    assert.equal(await run.exited, 1);
    assert.match(run.output(), /agentmesh: CONFIG_INVALID: .*registry\.ttl/s);
    assert.equal(existsSync(marker), false, 'the agent command was not run');
  });

  test('without a command after -- it says how to use it', async () => {
    const child = spawn(process.execPath, [CLI, 'run', '--config', join(dir, 'none.yaml')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    assert.equal(await new Promise((resolve) => child.once('close', resolve)), 1);
    assert.match(stderr, /no agent command after '--'/);
  });
});
