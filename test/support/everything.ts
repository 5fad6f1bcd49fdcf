// @modelcontextprotocol/server-everything (from npm) in Streamable HTTP mode as a child process. It takes
// its port from PORT and cannot report a port it picked, so a free port is found first and the start
// retried if another process takes it in between.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { waitFor } from './wait.ts';

export interface Everything extends AsyncDisposable {
  readonly url: string;
  stop(): Promise<void>;
}

const require = createRequire(import.meta.url);
const ENTRY = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function startEverything(): Promise<Everything> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child: ChildProcess = spawn(process.execPath, [ENTRY, 'streamableHttp'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    let exited = false;
    child.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
    child.once('exit', () => { exited = true; });
    try {
      await waitFor('server-everything to listen', () => {
        if (exited) throw new Error(log);
        return log.includes('listening on port');
      }, 15_000);
    } catch (err) {
      if (attempt < 3 && /already in use/.test(String(err))) continue;
      throw err;
    }
    const stop = async () => {
      if (exited) return;
      const done = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await done;
    };
    return { url: `http://127.0.0.1:${port}/mcp`, stop, [Symbol.asyncDispose]: stop };
  }
}
