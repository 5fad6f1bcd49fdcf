// Starts test/support/capacity-agent-child.ts and waits for its URL; stop() ends it (SIGKILL on dispose).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ROOT } from './sidecar-process.ts';
import { waitFor } from './wait.ts';

const CHILD = fileURLToPath(new URL('./capacity-agent-child.ts', import.meta.url));

export interface CapacityAgentProcess extends AsyncDisposable {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startCapacityAgent(options: { name: string; concurrency: number; serviceMs: number }): Promise<CapacityAgentProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(options)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await waitFor('capacity agent URL', () => {
    if (child.exitCode !== null) throw new Error(`agent exited: ${output}`);
    return /^(http:\/\/\S+)\n/m.exec(output)?.[1];
  }, 30_000).catch((err: unknown) => { child.kill('SIGKILL'); throw err; });
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  };
  return { url, stop, [Symbol.asyncDispose]: stop };
}
