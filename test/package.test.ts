// [long] The package as a user gets it: `npm pack` of this checkout (its dist/, built by `pretest`),
// installed into an empty project from the local npm cache, then used there under plain Node with no
// tsx and no sources: `npx agentmesh --version`, a sidecar (embedded registry) answering /readyz, an
// agent served with `agentmesh/sdk` and a second script calling it through the sidecar.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createTestPki, type TestPki } from './support/certs.ts';
import { ROOT } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** Plain node, no loader: what an installed package runs under. NODE_OPTIONS could carry `--import tsx`. */
const PLAIN_ENV = { ...process.env, NODE_OPTIONS: '' };

interface Run { code: number | null; stdout: string; stderr: string }

function run(command: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: PLAIN_ENV, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A long-running child of the consumer project; its output is collected, stop() kills it and waits. */
function start(args: string[], cwd: string) {
  const child: ChildProcess = spawn(process.execPath, args, { cwd, env: PLAIN_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    output: () => output,
    running: () => child.exitCode === null && child.signalCode === null,
    async stop() { if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM'); await exited; },
  };
}

const AGENT_SCRIPT = `import { serveAgent, message, textOf } from 'agentmesh/sdk';
import { AgentEvent } from '@a2a-js/sdk/server';
const agent = await serveAgent({ name: 'packaged', host: '127.0.0.1', skills: [{ id: 'echo' }], executor: {
  async execute(ctx, bus) { bus.publish(AgentEvent.message(message('agent', 'packaged: ' + textOf(ctx.userMessage.parts), { contextId: ctx.contextId }))); bus.finished(); },
  async cancelTask() {},
} });
console.log(agent.url);
process.once('SIGTERM', () => agent.close().then(() => process.exit(0)));
`;

const CALL_SCRIPT = `import { connectMesh, MeshError, textOf } from 'agentmesh/sdk';
const mesh = connectMesh({ url: process.argv[2] });
const agents = await mesh.agents();
const reply = await mesh.send('packaged', 'hello');
let unknown;
try { await mesh.send('nobody', 'hi'); } catch (err) { unknown = err instanceof MeshError ? err.code : String(err); }
console.log(JSON.stringify({ agents: agents.map((a) => a.name), reply: textOf(reply.parts ?? []), unknown }));
`;

describe('[long] the packed package in an empty project', () => {
  let dir: string;
  let project: string;
  let pki: TestPki;
  let install: Run;
  const children: { stop(): Promise<void> }[] = [];

  before(async () => {
    assert.ok(existsSync(join(ROOT, 'dist/sidecar/main.js')), 'dist/ is missing: run npm run build (npm test does it in pretest)');
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-package-'));
    pki = await createTestPki({ trustDomain: 'pkg.test' });
    // --ignore-scripts: prepack would rebuild dist/ under the other test files running now.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT);
    assert.equal(pack.code, 0, pack.stderr);
    const tarball = join(dir, (JSON.parse(pack.stdout) as { filename: string }[])[0]?.filename ?? '');
    project = join(dir, 'consumer');
    await run('mkdir', ['-p', project], dir);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    // From the npm cache that `npm ci` filled; the registry only for what the cache lacks.
    install = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], project, 240_000);
    assert.equal(install.code, 0, `npm install of the tarball failed:\n${install.stderr}`);
  });
  after(async () => {
    await Promise.allSettled(children.map((c) => c.stop()));
    await pki?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('installs without engine warnings, with no TypeScript sources and no tsx', () => {
    assert.doesNotMatch(install.stderr, /EBADENGINE/, 'a dependency does not support the Node range in engines');
    const installed = join(project, 'node_modules/agentmesh');
    assert.ok(existsSync(join(installed, 'dist/sdk/index.js')));
    assert.ok(existsSync(join(installed, 'dist/sdk/index.d.ts')), 'declarations are shipped');
    assert.ok(existsSync(join(installed, 'sidecar/dashboard/static/index.html')), 'the dashboard files are shipped');
    assert.equal(existsSync(join(project, 'node_modules/tsx')), false, 'tsx is a devDependency, not installed for users');
    const sources = readdirSync(installed, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
    assert.deepEqual(sources, []);
  });

  test('npx agentmesh --version', async () => {
    const out = await run('npx', ['agentmesh', '--version'], project);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout.trim(), `agentmesh ${VERSION}`);
    assert.doesNotMatch(out.stderr, /tsx|older than the sources/);
  });

  test('a sidecar from the package serves an agent written with agentmesh/sdk under plain node', async () => {
    writeFileSync(join(project, 'agent.mjs'), AGENT_SCRIPT);
    writeFileSync(join(project, 'call.mjs'), CALL_SCRIPT);
    const agent = start(['agent.mjs'], project);
    children.push(agent);
    const agentUrl = await waitFor('the packaged agent to print its URL', () => {
      if (!agent.running()) throw new Error(`agent exited:\n${agent.output()}`);
      return /^http:\S+/m.exec(agent.output())?.[0];
    }, 20_000);
    const config = join(project, 'sidecar.yaml');
    const ready = join(project, 'ready.json');
    writeFileSync(config, stringify({
      agent: { url: agentUrl }, registry: { dir: join(project, 'registry') },
      identity: await pki.issue('spiffe://pkg.test/agent/packaged'),
      listen: { outbound: '127.0.0.1:0', inbound: '127.0.0.1:0', admin: '127.0.0.1:0' }, log: { level: 'warn' },
    }));
    const sidecar = start([join(project, 'node_modules/.bin/agentmesh'), 'sidecar', '--config', config, '--ready-file', ready], project);
    children.push(sidecar);
    const addresses = await waitFor('the packaged sidecar ready file', () => {
      if (!sidecar.running()) throw new Error(`sidecar exited:\n${sidecar.output()}`);
      try { return JSON.parse(readFileSync(ready, 'utf8')) as { outbound: string; admin: string }; } catch { return undefined; }
    }, 30_000);
    const readyz = await waitFor('/readyz 200', async () => {
      const res = await fetch(`${addresses.admin}/readyz`);
      return res.status === 200 ? res : undefined;
    }, 20_000);
    assert.equal(readyz.status, 200);
    const call = await run(process.execPath, ['call.mjs', addresses.outbound], project, 60_000);
    assert.equal(call.code, 0, call.stderr);
    const result = JSON.parse(call.stdout) as { agents: string[]; reply: string; unknown: string };
    assert.deepEqual(result.agents, ['packaged']);
    assert.equal(result.reply, 'packaged: hello');
    assert.equal(result.unknown, 'AGENT_NOT_FOUND');
    assert.doesNotMatch(sidecar.output(), /tsx|older than the sources/);
  });
});
