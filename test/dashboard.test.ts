// The dashboard in headless Chromium (Debian's chromium, driven by playwright-core): two agents behind
// sidecar processes and an MCP server; the page at the admin listener's / shows them, the edge and a
// live call, runs under its CSP without a violation, and a screenshot is saved (docs/dashboard.png).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { callerExecutor, echoExecutor } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { ROOT, type SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

const CHROMIUM = '/usr/bin/chromium';
const STDIO = { name: 'text', command: [process.execPath, '--import', 'tsx', join(ROOT, 'test/fixtures/mcp-stdio-server.ts')], cwd: ROOT };

describe('dashboard', () => {
  let mesh: TestMesh;
  let agents: AgentServer[] = [];
  let planner: SidecarProcess;
  let browser: BrowserContext;
  let page: Page;
  const problems: string[] = [];
  const profile = mkdtempSync(join(tmpdir(), 'agentmesh-chromium-'));

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does it)`);
    mesh = await createTestMesh({ backend: 'embedded' });
    const echo = await serveAgent({ name: 'echo', executor: echoExecutor() });
    const plannerAgent = await serveAgent({ name: 'planner', executor: callerExecutor() });
    agents = [echo, plannerAgent];
    await mesh.sidecar('echo', { agent: { url: echo.url }, mcp: { servers: [STDIO] } });
    planner = await mesh.sidecar('planner', { agent: { url: plannerAgent.url } });
    await waitForAgent(planner, 'echo');
    await waitForAgent(planner, 'planner');
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, viewport: { width: 1200, height: 900 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = browser.pages()[0] ?? await browser.newPage();
    page.on('console', (msg) => { if (msg.type() === 'error' && !/api\/tap/.test(msg.text())) problems.push(`console: ${msg.text()}`); });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  });
  after(async () => {
    await browser?.close();
    await mesh?.close();
    await Promise.allSettled(agents.map((a) => a.close()));
    rmSync(profile, { recursive: true, force: true });
  });

  test('the page, its files and its JSON are served with a strict CSP and correct types', async () => {
    const res = await fetch(`${planner.admin}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const html = await res.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    assert.doesNotMatch(html, /https?:\/\//, 'nothing from another origin');
    assert.match((await fetch(`${planner.admin}/dashboard.js`)).headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match((await fetch(`${planner.admin}/dashboard.css`)).headers.get('content-type') ?? '', /^text\/css/);
    const bad = await fetch(`${planner.admin}/api/calls?after=soon`);
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(await bad.json()), /'after'/);
    assert.equal((await fetch(`${planner.admin}/dashboard.js/..%2f..%2fpackage.json`)).status, 404);
  });

  test('shows the agents, the MCP server, and a call as it happens: live, as an edge, with cert expiry', async (t) => {
    await page.goto(`${planner.admin}/`);
    await page.locator('#agents td.agent-name', { hasText: 'echo' }).waitFor();
    await page.locator('#agents td.agent-name', { hasText: 'planner' }).waitFor();
    await page.locator('#mcp tbody tr', { hasText: 'reverse' }).waitFor({ timeout: 20_000 });
    await page.locator('#cert', { hasText: 'expires in' }).waitFor();
    // Nothing called yet: no live call is shown.
    assert.equal(await page.locator('#calls tbody tr', { hasText: 'agent/echo' }).count(), 0);
    // The call: what the planner agent does when it asks echo through its sidecar.
    const source = await waitFor('the page to start watching calls', async () => {
      const text = await page.locator('#live-source').textContent() ?? '';
      return /tap|polling/.test(text) && text;
    });
    t.diagnostic(`live calls ${source}`);
    const res = await fetch(`${planner.outbound}/a2a/echo`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: `m-${Date.now()}`, role: 'ROLE_USER', parts: [{ text: 'hello dashboard' }] } } }),
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    const live = page.locator('#calls tbody tr', { hasText: 'agent/echo' });
    await live.first().waitFor();
    assert.match(await live.first().textContent() ?? '', /SendMessage.*200/);
    const edge = page.locator('#edges tbody tr', { hasText: 'agent/echo' });
    await edge.first().waitFor();
    assert.match(await edge.first().textContent() ?? '', /planner/);
    await page.locator('#breakers', { hasText: 'agent/echo' }).waitFor();
    assert.deepEqual(problems, [], `the page ran without errors or CSP violations (live calls ${source})`);
    const shot = join(profile, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = readFileSync(shot);
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    // The README's screenshot is refreshed on request, so ordinary runs leave the tree clean.
    if (process.env.AGENTMESH_UPDATE_SCREENSHOT === '1') copyFileSync(shot, join(ROOT, 'docs/dashboard.png'));
  });
});
