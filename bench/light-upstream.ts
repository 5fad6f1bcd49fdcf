// The light upstream (`--upstream=light`, the default): plain node:http, no A2A SDK. It answers a
// SendMessage with a ~1.5 KB JSON-RPC result in microseconds and a SendStreamingMessage with 20 SSE
// events 1 ms apart (stamped like the real agent's), so the proxies, not the agent, bound the run.
// It serves the real agent's card with its own origin, read once at start (argument: the agent URL).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LightUpstreamArgs {
  /** The real agent's base URL: its card is copied, with this server's origin in every URL. */
  agentUrl: string;
}

export interface LightUpstreamInfo {
  url: string;
}

const CARD_PATH = '/.well-known/agent-card.json';
const STREAM_EVENTS = 20;
const STREAM_GAP_MS = 1;
/** Brings the answer to about 1.5 KB. */
const PAD = 'y'.repeat(1200);

/** Reads `"id":` and `"messageId":"…"` and the method without a full parse: microseconds, like a fast agent. */
function fieldsOf(body: string): { id: string; messageId: string; streaming: boolean } {
  const id = /"id"\s*:\s*("[^"]*"|-?\d+)/.exec(body)?.[1] ?? 'null';
  const messageId = /"messageId"\s*:\s*"([^"]*)"/.exec(body)?.[1] ?? '';
  return { id, messageId, streaming: body.includes('"SendStreamingMessage"') };
}

function answer(id: string, messageId: string): string {
  return `{"jsonrpc":"2.0","id":${id},"result":{"message":{"messageId":"r-${messageId}","role":"ROLE_AGENT","contextId":"ctx-light","parts":[{"text":"echo: ${PAD}","mediaType":"text/plain"}]}}}`;
}

const stamp = () => `t=${process.hrtime.bigint()}`;

function event(id: string, i: number): string {
  const result = i === STREAM_EVENTS - 1
    ? `{"statusUpdate":{"taskId":"task-light","contextId":"ctx-light","status":{"state":"TASK_STATE_COMPLETED","message":{"messageId":"s-${i}","role":"ROLE_AGENT","parts":[{"text":"${stamp()}"}]}},"final":true}}`
    : `{"artifactUpdate":{"taskId":"task-light","contextId":"ctx-light","artifact":{"artifactId":"out","parts":[{"text":"${stamp()}"}]},"append":${i > 1}}}`;
  return `data: {"jsonrpc":"2.0","id":${id},"result":${result}}\n\n`;
}

function stream(res: ServerResponse, id: string): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let i = 0;
  const next = (): void => {
    if (res.destroyed) return;
    res.write(event(id, i));
    if (++i < STREAM_EVENTS) setTimeout(next, STREAM_GAP_MS);
    else res.end();
  };
  next();
}

async function main(args: LightUpstreamArgs): Promise<void> {
  const agentOrigin = new URL(args.agentUrl).origin;
  const res = await fetch(new URL(CARD_PATH, agentOrigin));
  if (!res.ok) throw new Error(`light upstream: GET ${agentOrigin}${CARD_PATH} answered HTTP ${res.status}`);
  const cardTemplate = await res.text();
  let card = '';
  const server = createServer((req: IncomingMessage, out: ServerResponse) => {
    if (req.method === 'GET' && req.url?.startsWith(CARD_PATH)) {
      out.writeHead(200, { 'content-type': 'application/json' }).end(card);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const { id, messageId, streaming } = fieldsOf(Buffer.concat(chunks).toString('utf8'));
      if (streaming) return stream(out, id);
      const body = answer(id, messageId);
      out.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  card = cardTemplate.replaceAll(agentOrigin, url);
  const stop = () => { server.close(); server.closeAllConnections(); process.exit(0); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const info: LightUpstreamInfo = { url };
  process.stdout.write(`READY ${JSON.stringify(info)}\n`);
}

await main(JSON.parse(process.argv[2] ?? '{}') as LightUpstreamArgs);
