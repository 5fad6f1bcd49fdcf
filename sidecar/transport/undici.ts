// The parts of undici the sidecar uses, required from undici's own files: its index also loads fetch,
// WebSocket, EventSource, the HTTP cache and the mock agents, ~9 MB RSS a sidecar does not use.
// undici is pinned exactly in package.json and sidecar/transport/undici.test.ts fails when an upgrade moves them.
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);

// What undici's index does so that request(), stream() and the rest exist on every dispatcher.
Object.assign((require('undici/lib/dispatcher/dispatcher.js') as { prototype: object }).prototype, require('undici/lib/api/index.js'));

export type Pool = Undici.Pool;
export const Pool = require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
