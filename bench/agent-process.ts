// The benchmark's upstreams, run as one child process: an A2A agent (an echo reply to SendMessage; a
// timed stream of 20 events when the text starts with "stream") and a Streamable HTTP MCP server.
// Stream events carry the agent's send time (process.hrtime, CLOCK_MONOTONIC, shared by all processes).
import { setTimeout as delay } from 'node:timers/promises';
import { TaskState } from '@a2a-js/sdk';
import { AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server';
import { artifactUpdate, message, newTask, serveAgent, statusUpdate, textOf, textPart } from '../sdk/index.ts';
import { serveTestMcp } from '../test/fixtures/mcp-http-server.ts';
import { STREAM_EVENTS, STREAM_GAP_MS } from './load.ts';

export interface AgentProcessInfo {
  agentUrl: string;
  mcpUrl: string;
}

const stamp = () => `t=${process.hrtime.bigint()}`;

async function stream(ctx: RequestContext, bus: ExecutionEventBus): Promise<void> {
  const { taskId, contextId } = ctx;
  bus.publish(AgentEvent.task(ctx.task ?? newTask(taskId, contextId, [ctx.userMessage])));
  for (let i = 1; i <= STREAM_EVENTS - 2; i++) {
    await delay(STREAM_GAP_MS);
    bus.publish(AgentEvent.artifactUpdate(artifactUpdate(taskId, contextId, { id: 'out', parts: [textPart(stamp())] }, { append: i > 1 })));
  }
  await delay(STREAM_GAP_MS);
  bus.publish(AgentEvent.statusUpdate(statusUpdate(taskId, contextId, TaskState.TASK_STATE_COMPLETED, stamp())));
}

const executor: AgentExecutor = {
  async execute(ctx, bus) {
    const text = textOf(ctx.userMessage.parts);
    if (text.startsWith('stream')) await stream(ctx, bus);
    else bus.publish(AgentEvent.message(message('agent', `echo: ${text}`, { contextId: ctx.contextId })));
    bus.finished();
  },
  async cancelTask() { /* nothing runs long enough to cancel */ },
};

async function main(): Promise<void> {
  const agent = await serveAgent({ name: 'echo', skills: [{ id: 'echo', tags: ['bench'] }], executor });
  const mcp = await serveTestMcp(['echo']);
  const stop = () => { void Promise.allSettled([agent.close(), mcp.close()]).then(() => process.exit(0)); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const info: AgentProcessInfo = { agentUrl: agent.url, mcpUrl: mcp.url };
  process.stdout.write(`READY ${JSON.stringify(info)}\n`);
}

await main();
