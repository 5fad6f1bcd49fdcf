// Builders for the @a2a-js/sdk protocol objects agent code makes most: text parts, user and agent
// messages, status and artifact events. The generated types need every field spelled out.
import { randomUUID } from 'node:crypto';
import { Role, TaskState, type Artifact, type Message, type Part, type Task, type TaskArtifactUpdateEvent, type TaskStatusUpdateEvent } from '@a2a-js/sdk';

export function textPart(text: string): Part {
  return { content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' };
}

export function dataPart(value: unknown): Part {
  return { content: { $case: 'data', value }, metadata: undefined, filename: '', mediaType: 'application/json' };
}

export function message(role: 'user' | 'agent', parts: Part[] | string, ids: { taskId?: string; contextId?: string; metadata?: Record<string, unknown> } = {}): Message {
  return {
    messageId: randomUUID(), role: role === 'user' ? Role.ROLE_USER : Role.ROLE_AGENT,
    parts: typeof parts === 'string' ? [textPart(parts)] : parts,
    taskId: ids.taskId ?? '', contextId: ids.contextId ?? '', metadata: ids.metadata, extensions: [], referenceTaskIds: [],
  };
}

export function newTask(taskId: string, contextId: string, history: Message[] = []): Task {
  return {
    id: taskId, contextId, artifacts: [], history, metadata: undefined,
    status: { state: TaskState.TASK_STATE_SUBMITTED, message: undefined, timestamp: new Date().toISOString() },
  };
}

export function statusUpdate(taskId: string, contextId: string, state: TaskState, text?: string, metadata?: Record<string, unknown>): TaskStatusUpdateEvent {
  return {
    taskId, contextId, metadata: undefined,
    status: {
      state, timestamp: new Date().toISOString(),
      message: text === undefined ? undefined : message('agent', text, { taskId, contextId, ...(metadata ? { metadata } : {}) }),
    },
  };
}

export function artifactUpdate(taskId: string, contextId: string, artifact: { id: string; parts: Part[]; name?: string }, options: { append?: boolean; lastChunk?: boolean } = {}): TaskArtifactUpdateEvent {
  const value: Artifact = {
    artifactId: artifact.id, name: artifact.name ?? '', description: '', parts: artifact.parts, metadata: undefined, extensions: [],
  };
  return { taskId, contextId, artifact: value, append: options.append ?? false, lastChunk: options.lastChunk ?? false, metadata: undefined };
}

/** The text of a message or artifact's parts, concatenated. */
export function textOf(parts: readonly Part[] | undefined): string {
  return (parts ?? []).map((p) => (p.content?.$case === 'text' ? p.content.value : '')).join('');
}
