// One call through the mesh from an agent's point of view: connectMesh() (AGENTMESH_URL), wait until
// the target is listed, send one message, print { text } or { error } as JSON. Test-only.
// Usage: AGENTMESH_URL=… node --import tsx test/support/mesh-call-child.ts TARGET TEXT
import { setTimeout as delay } from 'node:timers/promises';
import { connectMesh, textOf } from '../../sdk/index.ts';

const [target = '', text = ''] = process.argv.slice(2);
const mesh = connectMesh();
try {
  const deadline = Date.now() + 20_000;
  while ((await mesh.agents({ name: target })).length === 0) {
    if (Date.now() > deadline) throw new Error(`'${target}' not listed by the sidecar within 20 s`);
    await delay(100); // polling with a deadline
  }
  const reply = await mesh.send(target, text, { signal: AbortSignal.timeout(20_000) });
  const parts = 'parts' in reply ? reply.parts : reply.status?.message?.parts;
  process.stdout.write(`${JSON.stringify({ text: textOf(parts) })}\n`);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ error: String(err) })}\n`);
  process.exitCode = 1;
}
