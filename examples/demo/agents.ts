// The demo's three deterministic agents (no LLM, no keys): a researcher that streams findings, a
// writer that summarises them, and a planner that finds both through the mesh and reports each hop.
import { AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server';
import { TaskState, type Message, type Task } from '@a2a-js/sdk';
import { artifactUpdate, callerOf, connectMesh, dataPart, message, newTask, statusUpdate, textOf, textPart, type Mesh } from '../../sdk/index.ts';

export type Role = 'planner' | 'researcher' | 'writer';

/** One hop as the caller measured it, with the identity the callee saw. */
export interface Hop {
  from: string;
  to: string;
  caller: string;
  ms: number;
  foundBy?: string;
  events?: number;
  firstEventMs?: number;
}

export const SKILLS: Record<Role, { id: string; description: string }> = {
  planner: { id: 'plan', description: 'Plans a piece of research and delegates it' },
  researcher: { id: 'research', description: 'Finds sources on a topic, streaming findings' },
  writer: { id: 'summarize', description: 'Turns findings into a short summary' },
};

const ASPECTS = ['who needs it', 'how it works', 'what can go wrong'];

function simple(run: (ctx: RequestContext, bus: ExecutionEventBus) => Promise<void>): AgentExecutor {
  return { execute: run, cancelTask: async () => undefined };
}

/** Streams one finding per aspect of the topic as artifact chunks, then completes with the caller it saw. */
export function researcher(): AgentExecutor {
  return simple(async (ctx, bus) => {
    const { taskId, contextId } = ctx;
    const topic = textOf(ctx.userMessage.parts).trim() || 'nothing';
    bus.publish(AgentEvent.task(ctx.task ?? newTask(taskId, contextId, [ctx.userMessage])));
    bus.publish(AgentEvent.statusUpdate(statusUpdate(taskId, contextId, TaskState.TASK_STATE_WORKING)));
    for (const [i, aspect] of ASPECTS.entries()) {
      await new Promise((resolve) => setTimeout(resolve, 40)); // a researcher takes a moment per finding
      const finding = `finding ${i + 1}: ${aspect} — "${topic}" (source ${i + 1})`;
      bus.publish(AgentEvent.artifactUpdate(artifactUpdate(taskId, contextId, { id: 'findings', parts: [textPart(`${finding}\n`)] }, { append: i > 0, lastChunk: i === ASPECTS.length - 1 })));
    }
    bus.publish(AgentEvent.statusUpdate(statusUpdate(taskId, contextId, TaskState.TASK_STATE_COMPLETED, 'done', { caller: callerOf(ctx) ?? 'anonymous' })));
    bus.finished();
  });
}

/** The MCP tool the writer calls through the mesh's federated endpoint. */
export const STATS_TOOL = 'stats__word_count';

/** Summarises the findings it was given, with word counts from the `stats` MCP server elsewhere in the mesh. */
export function writer(meshUrl: () => Promise<string>): AgentExecutor {
  return simple(async (ctx, bus) => {
    const text = textOf(ctx.userMessage.parts);
    const findings = text.split('\n').filter(Boolean);
    const aspects = findings.map((f) => f.replace(/^finding \d+: /, '').replace(/ — .*$/, ''));
    const started = performance.now();
    const tools = await connectMesh({ url: await meshUrl() }).mcp();
    let words = 0;
    try {
      const result = await tools.callTool({ name: STATS_TOOL, arguments: { text } });
      words = Number((result.structuredContent as { words?: number } | undefined)?.words ?? 0);
    } finally {
      await tools.close();
    }
    const toolMs = performance.now() - started;
    const summary = `Summary of ${findings.length} findings (${words} words): it covers ${aspects.join(', ')}.`;
    bus.publish(AgentEvent.message(message('agent', summary, { contextId: ctx.contextId, metadata: { caller: callerOf(ctx) ?? 'anonymous', toolMs } })));
    bus.finished();
  });
}

/** Finds a researcher by skill, streams from it, hands the findings to the writer, returns summary + hops. */
export function planner(meshUrl: () => Promise<string>): AgentExecutor {
  let mesh: Mesh | undefined;
  return simple(async (ctx, bus) => {
    const { taskId, contextId } = ctx;
    mesh ??= connectMesh({ url: await meshUrl() });
    const topic = textOf(ctx.userMessage.parts).trim();
    bus.publish(AgentEvent.task(ctx.task ?? newTask(taskId, contextId, [ctx.userMessage])));
    const hops: Hop[] = [];
    try {
      const [found] = await mesh.agents({ skill: SKILLS.researcher.id });
      if (!found) throw new Error(`no agent with skill '${SKILLS.researcher.id}' in the mesh`);
      let started = performance.now();
      let events = 0;
      let firstEventMs = 0;
      let findings = '';
      let researcherSaw = '';
      for await (const event of mesh.stream(found.name, topic)) {
        if (events++ === 0) firstEventMs = performance.now() - started;
        const p = event.payload;
        if (p?.$case === 'artifactUpdate') findings += textOf(p.value.artifact?.parts);
        if (p?.$case === 'statusUpdate' && p.value.status?.message) researcherSaw = String(p.value.status.message.metadata?.caller ?? '');
      }
      hops.push({ from: 'planner', to: found.name, caller: researcherSaw, ms: performance.now() - started, foundBy: `skill '${SKILLS.researcher.id}'`, events, firstEventMs });
      const [writerAgent] = await mesh.agents({ skill: SKILLS.writer.id });
      if (!writerAgent) throw new Error(`no agent with skill '${SKILLS.writer.id}' in the mesh`);
      started = performance.now();
      const reply = await mesh.send(writerAgent.name, findings);
      const summary = isMessage(reply) ? textOf(reply.parts) : textOf(reply.status?.message?.parts);
      const writerSaw = isMessage(reply) ? String(reply.metadata?.caller ?? '') : '';
      hops.push({ from: 'planner', to: writerAgent.name, caller: writerSaw, ms: performance.now() - started, foundBy: `skill '${SKILLS.writer.id}'` });
      const toolMs = isMessage(reply) ? Number(reply.metadata?.toolMs ?? 0) : 0;
      hops.push({ from: writerAgent.name, to: `MCP ${STATS_TOOL}`, caller: '', ms: toolMs, foundBy: 'the federated /mcp endpoint' });
      bus.publish(AgentEvent.artifactUpdate(artifactUpdate(taskId, contextId, { id: 'report', parts: [textPart(summary), dataPart({ hops, plannerCaller: callerOf(ctx) ?? 'anonymous', findings })] }, { lastChunk: true })));
      bus.publish(AgentEvent.statusUpdate(statusUpdate(taskId, contextId, TaskState.TASK_STATE_COMPLETED)));
    } catch (err) {
      bus.publish(AgentEvent.statusUpdate(statusUpdate(taskId, contextId, TaskState.TASK_STATE_FAILED, `planner failed: ${(err as Error).message}`)));
    }
    bus.finished();
  });
}

function isMessage(value: Task | Message): value is Message {
  return 'messageId' in value;
}
