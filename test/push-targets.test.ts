// Push-notification targets are checked at the calling sidecar (real processes): every forbidden address
// form in an inline SendMessage push config (v1.0 and v0.3) and in CreateTaskPushNotificationConfig
// (JSON-RPC and REST) is refused before it leaves with PUSH_TARGET_FORBIDDEN; a URL in push.allow passes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { rawRequest } from './support/raw-http.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';

const FORBIDDEN = [
  'http://hooks.example.com/a2a', 'https://127.0.0.1/h', 'https://2130706433/h', 'https://0x7f000001/h', 'https://0177.0.0.1/h',
  'https://[::1]/h', 'https://[::ffff:127.0.0.1]/h', 'https://[::ffff:a9fe:a9fe]/h', 'https://169.254.169.254/latest/meta-data',
  'https://10.0.0.7/h', 'https://172.20.0.1/h', 'https://192.168.0.10/h', 'https://100.64.1.1/h', 'https://[fe80::1]/h',
  'https://[fd00:ec2::254]/h', 'https://localhost/h', 'https://metadata.google.internal/h', 'https://0.0.0.0/h',
];
const ALLOWED = 'http://127.0.0.1:9/hooks/agentmesh';

describe('push-notification targets', () => {
  let mesh: TestMesh;
  let agent: AgentServer;
  let caller: SidecarProcess;
  let arrived = 0;

  before(async () => {
    mesh = await createTestMesh({ backend: 'embedded' });
    agent = await serveAgent({ name: 'hooked', executor: echoExecutor(), protocolVersions: ['1.0', '0.3'], configure: (app) => app.use((_req, _res, next) => { arrived++; next(); }) });
    await mesh.sidecar('hooked', { agent: { url: agent.url } });
    caller = await mesh.sidecar('pusher', { push: { allow: ['http://127.0.0.1:9/hooks/'] } });
    await waitForAgent(caller, 'hooked');
  });
  after(async () => {
    await mesh?.close();
    await agent?.close();
  });

  const post = (path: string, body: unknown, version = '1.0') => rawRequest(caller.outbound, {
    method: 'POST', path, body: JSON.stringify(body),
    headers: { host: new URL(caller.outbound).host, 'content-type': 'application/json', 'a2a-version': version },
  });
  const shapes = (url: string, i: number) => [
    { name: 'SendMessage inline', path: '/a2a/hooked', body: { jsonrpc: '2.0', id: i, method: 'SendMessage', params: { message: { messageId: `p${i}`, role: 'ROLE_USER', parts: [{ text: 'x' }] }, configuration: { taskPushNotificationConfig: { url } } } } },
    { name: 'v0.3 message/send inline', path: '/a2a/hooked', version: '0.3', body: { jsonrpc: '2.0', id: i, method: 'message/send', params: { message: { kind: 'message', messageId: `q${i}`, role: 'user', parts: [{ kind: 'text', text: 'x' }] }, configuration: { pushNotificationConfig: { url } } } } },
    { name: 'CreateTaskPushNotificationConfig', path: '/a2a/hooked', body: { jsonrpc: '2.0', id: i, method: 'CreateTaskPushNotificationConfig', params: { taskId: 't1', url } } },
    { name: 'REST pushNotificationConfigs', path: '/a2a/hooked/tasks/t1/pushNotificationConfigs', rest: true, body: { taskId: 't1', url } },
    { name: 'REST message:send inline', path: '/a2a/hooked/message:send', rest: true, body: { message: { messageId: `r${i}`, role: 'ROLE_USER', parts: [{ text: 'x' }] }, configuration: { taskPushNotificationConfig: { url } } } },
  ];

  test('each forbidden address form is refused at the calling sidecar', async () => {
    const before = arrived;
    let i = 0;
    for (const url of FORBIDDEN) {
      for (const shape of shapes(url, i++)) {
        const res = await post(shape.path, shape.body, shape.version);
        const what = `${shape.name} → ${url}`;
        if (shape.rest) {
          assert.equal(res.status, 400, `${what}: ${res.body}`);
          assert.match(res.body, /PUSH_TARGET_FORBIDDEN/, what);
        } else {
          assert.equal(res.status, 200, `${what}: ${res.body}`);
          const error = (JSON.parse(res.body) as { error?: { code?: number; data?: { code?: string } } }).error;
          assert.equal(error?.code, -32067, `${what}: ${res.body}`);
          assert.equal(error?.data?.code, 'PUSH_TARGET_FORBIDDEN', what);
        }
        assert.match(res.body, /push-notification URL refused/, what);
      }
    }
    assert.equal(arrived, before, 'a refused push config reached the agent');
  });

  test('a push config hidden behind JSON escapes in a REST body is still found', async () => {
    const body = `{"message":{"messageId":"esc","role":"ROLE_USER","parts":[{"text":"x"}]},"configuration":{"taskP\\u0075shNotificationConfig":{"url":"https://169.254.169.254/"}}}`;
    assert.ok(body.includes('\\u0075') && !body.includes('Push'));
    const res = await rawRequest(caller.outbound, {
      method: 'POST', path: '/a2a/hooked/message:send', body,
      headers: { host: new URL(caller.outbound).host, 'content-type': 'application/json', 'a2a-version': '1.0' },
    });
    assert.equal(res.status, 400, res.body);
    assert.match(res.body, /PUSH_TARGET_FORBIDDEN/);
  });

  test('a target in push.allow passes to the agent', async () => {
    for (const shape of shapes(ALLOWED, 1000)) {
      const before = arrived;
      const res = await post(shape.path, shape.body, shape.version);
      assert.ok(!res.body.includes('PUSH_TARGET_FORBIDDEN'), `${shape.name}: ${res.body}`);
      assert.ok(arrived > before, `${shape.name} did not reach the agent: ${res.body}`);
    }
  });
});
