// The agentmesh SDK: what agent code imports. Talks to the local sidecar over HTTP; needs no registry code.
// registry/ and sidecar/ import only the error catalog, from its own entry point sdk/errors.ts.
export * from './errors.ts';
export { connectMesh, DEFAULT_SIDECAR_URL, type Mesh, type MeshAgent, type MeshMcpServer, type AgentQuery, type CallOptions, type SendOptions, type ConnectOptions } from './connect.ts';
export { serveAgent, callerOf, meshContextOf, type MeshContext, type AgentServer, type ServeAgentOptions, type SkillInput } from './serve-agent.ts';
export { textPart, dataPart, message, newTask, statusUpdate, artifactUpdate, textOf } from './messages.ts';
export * from './mesh-headers.ts';
