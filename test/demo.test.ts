// The demo as a user runs it (`agentmesh demo`), once per registry backend: it exits 0 and its account
// shows every hop with the caller identity the callee saw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './support/sidecar-process.ts';

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
  });
}
