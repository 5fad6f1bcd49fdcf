// The demo as a user runs it (`agentmesh demo`), once per registry backend: it exits 0 and its account
// shows every hop with the caller identity the callee saw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CLI, ROOT, runCli } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

for (const backend of ['embedded', 'nats'] as const) {
  test(`agentmesh demo with the ${backend} registry`, async () => {
    const { code, stdout, stderr } = await runCli(['demo'], { env: { AGENTMESH_DEMO_REGISTRY: backend }, timeoutMs: 90_000 });
    assert.equal(code, 0, `demo failed:\n${stdout}\n${stderr}`);
    assert.match(stdout, new RegExp(`registry\\s+${backend === 'nats' ? 'NATS JetStream KV' : 'embedded'}`));
    assert.match(stdout, /trust\s+registry records are signed \(JWS/);
    assert.match(stdout, /hop 1\s+console → planner\s+caller=spiffe:\/\/demo\.local\/user\/console/);
    assert.match(stdout, /hop 2\s+planner → researcher\s+caller=spiffe:\/\/demo\.local\/agent\/planner\s+\d+ events/);
    assert.match(stdout, /hop 3\s+planner → writer\s+caller=spiffe:\/\/demo\.local\/agent\/planner/);
    assert.match(stdout, /hop 4\s+writer → MCP stats__word_count\s+done in \d+ ms/);
    assert.match(stdout, /summary: Summary of 3 findings \(\d+ words\)/);
    assert.match(stdout, /first-hop times include start-up/);
  });
}

test('agentmesh demo --keep stays up for the CLI until Ctrl-C', async (t) => {
  const child = spawn(process.execPath, [CLI, 'demo', '--keep'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AGENTMESH_DEMO_REGISTRY: 'embedded' } });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  const url = await waitFor('the demo to stay up', () => /export AGENTMESH_URL=(\S+)/.exec(stdout)?.[1], 90_000);
  assert.match(stdout, /agentmesh tap --admin http:\/\/127\.0\.0\.1:\d+/);
  const agents = await runCli(['agents', '--json'], { env: { AGENTMESH_URL: url } });
  assert.equal(agents.code, 0, agents.stderr);
  assert.deepEqual((JSON.parse(agents.stdout) as { name: string }[]).map((a) => a.name).sort(), ['planner', 'researcher', 'writer']);
  child.kill('SIGINT');
  assert.equal(await exited, 0);
});
