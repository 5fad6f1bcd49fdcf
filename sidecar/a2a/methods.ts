// The one table of A2A methods the sidecar knows: v1.0 name, v0.3 alias, REST route, whether it only
// reads (safe to retry after it was sent), whether the receiving sidecar deduplicates it, and where its
// task id lives. Everything else (metrics, retries, dedup, task affinity) looks methods up here.

/** Where a method's task id sits in its JSON-RPC params (v1.0 and v0.3 differ for some methods). */
type TaskIdAt = 'id' | 'taskId' | 'message.taskId' | 'none';

export interface A2aMethod {
  /** The v1.0 name, also the name in metrics and logs whichever version the caller spoke. */
  readonly name: string;
  readonly v03: string | undefined;
  /** Only reads state: safe to retry after a 502/503/504/429 answer. */
  readonly readOnly: boolean;
  /** The receiving sidecar answers a resend of the same messageId with the first outcome. */
  readonly deduplicated: boolean;
  readonly taskId: { v1: TaskIdAt; v03: TaskIdAt };
  /** REST binding: HTTP method and path pattern ({id} is the task id). */
  readonly rest: { method: 'GET' | 'POST' | 'DELETE'; path: RegExp } | undefined;
  /** Answers with a long-lived SSE stream (admission counts these apart from ordinary calls). */
  readonly streaming?: true;
}

const TASK = '([^/:]+)';
const method = (m: A2aMethod): A2aMethod => m;

export const A2A_METHODS: readonly A2aMethod[] = [
  method({ name: 'SendMessage', v03: 'message/send', readOnly: false, deduplicated: true, taskId: { v1: 'message.taskId', v03: 'message.taskId' }, rest: { method: 'POST', path: /^\/message:send$/ } }),
  method({ name: 'SendStreamingMessage', v03: 'message/stream', readOnly: false, deduplicated: false, taskId: { v1: 'message.taskId', v03: 'message.taskId' }, rest: { method: 'POST', path: /^\/message:stream$/ }, streaming: true }),
  method({ name: 'GetTask', v03: 'tasks/get', readOnly: true, deduplicated: false, taskId: { v1: 'id', v03: 'id' }, rest: { method: 'GET', path: new RegExp(`^/tasks/${TASK}$`) } }),
  method({ name: 'ListTasks', v03: undefined, readOnly: true, deduplicated: false, taskId: { v1: 'none', v03: 'none' }, rest: { method: 'GET', path: /^\/tasks$/ } }),
  method({ name: 'CancelTask', v03: 'tasks/cancel', readOnly: false, deduplicated: false, taskId: { v1: 'id', v03: 'id' }, rest: { method: 'POST', path: new RegExp(`^/tasks/${TASK}:cancel$`) } }),
  method({ name: 'SubscribeToTask', v03: 'tasks/resubscribe', readOnly: true, deduplicated: false, taskId: { v1: 'id', v03: 'id' }, rest: { method: 'POST', path: new RegExp(`^/tasks/${TASK}:subscribe$`) }, streaming: true }),
  method({ name: 'CreateTaskPushNotificationConfig', v03: 'tasks/pushNotificationConfig/set', readOnly: false, deduplicated: false, taskId: { v1: 'taskId', v03: 'taskId' }, rest: { method: 'POST', path: new RegExp(`^/tasks/${TASK}/pushNotificationConfigs$`) } }),
  method({ name: 'GetTaskPushNotificationConfig', v03: 'tasks/pushNotificationConfig/get', readOnly: true, deduplicated: false, taskId: { v1: 'taskId', v03: 'id' }, rest: { method: 'GET', path: new RegExp(`^/tasks/${TASK}/pushNotificationConfigs/[^/]+$`) } }),
  method({ name: 'ListTaskPushNotificationConfigs', v03: 'tasks/pushNotificationConfig/list', readOnly: true, deduplicated: false, taskId: { v1: 'taskId', v03: 'id' }, rest: { method: 'GET', path: new RegExp(`^/tasks/${TASK}/pushNotificationConfigs$`) } }),
  method({ name: 'DeleteTaskPushNotificationConfig', v03: 'tasks/pushNotificationConfig/delete', readOnly: false, deduplicated: false, taskId: { v1: 'taskId', v03: 'id' }, rest: { method: 'DELETE', path: new RegExp(`^/tasks/${TASK}/pushNotificationConfigs/[^/]+$`) } }),
  method({ name: 'GetExtendedAgentCard', v03: 'agent/getAuthenticatedExtendedCard', readOnly: true, deduplicated: false, taskId: { v1: 'none', v03: 'none' }, rest: { method: 'GET', path: /^\/extendedAgentCard$/ } }),
];

/** A JSON-RPC method name resolved against the table; `version` says which name the caller used. */
export interface ResolvedMethod {
  readonly method: A2aMethod;
  readonly version: '1.0' | '0.3';
}

const BY_RPC_NAME = new Map<string, ResolvedMethod>();
for (const m of A2A_METHODS) {
  BY_RPC_NAME.set(m.name, { method: m, version: '1.0' });
  if (m.v03) BY_RPC_NAME.set(m.v03, { method: m, version: '0.3' });
}

/** The table entry for a JSON-RPC method name (v1.0 or v0.3), or undefined for an unknown method. */
export function rpcMethod(name: string): ResolvedMethod | undefined {
  return BY_RPC_NAME.get(name);
}

/** The task a JSON-RPC request is about, read from where the table says its params keep it. */
export function rpcTaskId(resolved: ResolvedMethod, params: unknown): string | undefined {
  const at = resolved.version === '1.0' ? resolved.method.taskId.v1 : resolved.method.taskId.v03;
  const p = (params ?? {}) as Record<string, unknown>;
  let id: unknown;
  switch (at) {
    case 'id': id = p.id; break;
    case 'taskId': id = p.taskId; break;
    case 'message.taskId': id = (p.message as Record<string, unknown> | undefined)?.taskId; break;
    case 'none': id = undefined; break;
    default: at satisfies never;
  }
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/** A REST request (method and path under /a2a/{agent}, optional /{tenant} prefix) resolved against the table. */
export function restMethod(httpMethod: string, rest: string): { method: A2aMethod | undefined; taskId: string | undefined } {
  const verb = httpMethod === 'HEAD' ? 'GET' : httpMethod;
  for (const candidate of [rest, rest.replace(/^\/[^/]+(?=\/)/, '')]) {
    for (const m of A2A_METHODS) {
      if (!m.rest || m.rest.method !== verb) continue;
      const match = m.rest.path.exec(candidate);
      if (match) return { method: m, taskId: match[1] === undefined ? undefined : safeDecode(match[1]) };
    }
  }
  return { method: undefined, taskId: undefined };
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
