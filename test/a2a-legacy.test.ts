// A2A v0.3 through the mesh: a v0.3-only agent behind one sidecar, called by the @a2a-js/sdk's v0.3
// compatibility client on another sidecar's route, over both bindings.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientFactory, ClientFactoryOptions, DefaultAgentCardResolver, JsonRpcTransportFactory, RestTransportFactory } from '@a2a-js/sdk/client';
import { message, serveAgent, type AgentServer } from '../sdk/index.ts';
import { echoExecutor, streamingExecutor } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';

function legacyFactory(binding: 'JSONRPC' | 'HTTP+JSON'): ClientFactory {
  const legacyCompat = { enabled: true };
  return new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [new JsonRpcTransportFactory({ legacyCompat }), new RestTransportFactory({ legacyCompat })],
    cardResolver: new DefaultAgentCardResolver({ legacyCompat }),
    preferredTransports: [binding],
  }));
}

describe('A2A v0.3 through the mesh', () => {
  let mesh: TestMesh;
  let caller: SidecarProcess;
  const agents: AgentServer[] = [];

  before(async () => {
    mesh = await createTestMesh({ backend: 'embedded' });
    const old = await serveAgent({ name: 'old', executor: echoExecutor(), protocolVersions: ['0.3'] });
    const oldStream = await serveAgent({ name: 'oldstream', executor: streamingExecutor({ chunks: 2 }), protocolVersions: ['0.3'] });
    const both = await serveAgent({ name: 'both', executor: echoExecutor(), protocolVersions: ['1.0', '0.3'] });
    agents.push(old, oldStream, both);
    await mesh.sidecar('both', { agent: { url: both.url } });
    await mesh.sidecar('old', { agent: { url: old.url } });
    await mesh.sidecar('oldstream', { agent: { url: oldStream.url } });
    caller = await mesh.sidecar('caller');
    await waitForAgent(caller, 'old');
    await waitForAgent(caller, 'oldstream');
    await waitForAgent(caller, 'both');
  });
  after(async () => {
    await mesh?.close();
    await Promise.allSettled(agents.map((a) => a.close()));
  });

  test('the v0.3 card keeps its shape with url and additionalInterfaces rewritten', async () => {
    const card = await (await fetch(`${caller.outbound}/a2a/old/.well-known/agent-card.json`)).json() as { url: string; protocolVersion: string; additionalInterfaces: { url: string }[] };
    assert.equal(card.protocolVersion, '0.3');
    assert.equal(card.url, `${caller.outbound}/a2a/old`);
    for (const i of card.additionalInterfaces) assert.equal(i.url, `${caller.outbound}/a2a/old`);
  });

  test('an agent that speaks both versions gets its card in the shape the caller\'s A2A-Version asks for', async () => {
    const route = `${caller.outbound}/a2a/both`;
    const direct = async (version?: string) => (await fetch(`${agents[2]?.url}/.well-known/agent-card.json`, { headers: version ? { 'a2a-version': version } : {} })).json() as Promise<Record<string, unknown>>;
    const viaMesh = async (version?: string) => (await fetch(`${route}/.well-known/agent-card.json`, { headers: version ? { 'a2a-version': version } : {} })).json() as Promise<Record<string, unknown>>;
    for (const version of [undefined, '0.3']) {
      const [mine, theirs] = [await viaMesh(version), await direct(version)];
      assert.equal(mine.protocolVersion, '0.3', `A2A-Version ${version ?? '(none)'}`);
      assert.equal(mine.url, route);
      assert.deepEqual(Object.keys(mine).sort(), Object.keys(theirs).sort(), 'the same shape the agent serves directly');
    }
    const v1 = await viaMesh('1.0');
    assert.equal(v1.url, undefined);
    const interfaces = v1.supportedInterfaces as { url: string }[];
    assert.ok(interfaces.length > 0 && interfaces.every((i) => i.url === route));
    // And a v0.3 client works against it through the mesh.
    const client = await legacyFactory('JSONRPC').createFromUrl(`${route}/`);
    assert.match(JSON.stringify(await client.sendMessage({ tenant: '', message: message('user', 'both ways'), configuration: undefined, metadata: undefined })), /echo: both ways/);
  });

  for (const binding of ['JSONRPC', 'HTTP+JSON'] as const) {
    test(`a v0.3 client sends and streams over ${binding}`, async () => {
      const client = await legacyFactory(binding).createFromUrl(`${caller.outbound}/a2a/old/`);
      const direct = await legacyFactory(binding).createFromUrl(`${agents[0]?.url}/`);
      const viaMesh = await client.sendMessage({ tenant: '', message: message('user', 'old times'), configuration: undefined, metadata: undefined });
      const plain = await direct.sendMessage({ tenant: '', message: message('user', 'old times'), configuration: undefined, metadata: undefined });
      assert.match(JSON.stringify(viaMesh), /echo: old times/);
      assert.deepEqual(Object.keys(viaMesh).sort(), Object.keys(plain).sort());
      const streamer = await legacyFactory(binding).createFromUrl(`${caller.outbound}/a2a/oldstream/`);
      const kinds: string[] = [];
      for await (const e of streamer.sendMessageStream({ tenant: '', message: message('user', 'go'), configuration: undefined, metadata: undefined })) {
        kinds.push(e.payload?.$case ?? '?');
      }
      assert.equal(kinds[0], 'task');
      assert.equal(kinds.filter((k) => k === 'artifactUpdate').length, 2);
      assert.equal(kinds.at(-1), 'statusUpdate');
    });
  }
});
