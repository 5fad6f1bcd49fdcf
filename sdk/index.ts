// The agentmesh SDK: what agent code imports. Talks to the local sidecar over HTTP; needs no registry code.
export * from './errors.ts';
