#!/usr/bin/env node
// The `agentmesh` command: loads the TypeScript sources through tsx and hands over to sidecar/main.ts.
import { register } from 'tsx/esm/api';

register();
await import('../sidecar/main.ts');
