// `agentmesh run --config F -- CMD …`: the sidecar in this process and the agent command as a child with
// AGENTMESH_URL set to the outbound listener. A signal reaches both; either one ending stops the other
// (the sidecar withdraws its registration); the exit code is the agent's. main.ts owns the process.
import { spawn } from 'node:child_process';
import { rename, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { MeshError } from '../../sdk/errors.ts';
import { createLogger, type Logger } from '../log.ts';
import { startSidecar, type Sidecar } from '../sidecar.ts';
import { stringFlag, type ParsedArgs } from './args.ts';
import { configFromArgs, type CliContext } from './commands.ts';

/** How long the agent has to exit after a forwarded signal, beyond the sidecar's drain timeout, before SIGKILL. */
const AGENT_GRACE_MS = 10_000;

interface AgentProcess {
  /** Resolves with the exit code the launcher should return: the agent's, or 128 + signal number. */
  readonly exited: Promise<number>;
  running(): boolean;
  kill(signal: NodeJS.Signals): void;
}

export async function runWithSidecar(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const [program, ...argv] = args.positionals.slice(1);
  if (!program) throw new MeshError('CONFIG_INVALID', "usage: agentmesh run --config FILE [--<key> VALUE ...] -- COMMAND [ARGS ...] (no agent command after '--')");
  const config = await configFromArgs(args, ctx.env, ['ready-file']);
  const readyFile = stringFlag(args, 'ready-file');
  const log = createLogger(config.log.level);
  const startup = new AbortController();
  let agent: AgentProcess | undefined;
  const onSignal = () => {
    startup.abort();
    agent?.kill(signalOf(ctx.signal));
  };
  ctx.signal.addEventListener('abort', onSignal, { once: true });
  let sidecar: Sidecar;
  try {
    sidecar = await startSidecar(config, log, {
      startup: startup.signal,
      onListening: (addresses) => {
        if (ctx.signal.aborted) return;
        agent = spawnAgent(program, argv, agentEnv(ctx.env, addresses.outbound), log);
        void agent.exited.then(() => startup.abort());
      },
    });
  } catch (err) {
    ctx.signal.removeEventListener('abort', onSignal);
    if (!agent) throw err;
    if (!agent.running()) {
      log.warn({ err }, 'the agent exited while the sidecar was starting; the sidecar stopped');
      return agent.exited;
    }
    agent.kill('SIGTERM');
    await stopAgent(agent, AGENT_GRACE_MS, log);
    throw err;
  }
  const child = agent;
  if (!child) {
    // A signal arrived before the listeners were up: nothing was started for the agent.
    await sidecar.close();
    return 128 + (constants.signals[signalOf(ctx.signal)] ?? 15);
  }
  if (readyFile) {
    await writeFile(`${readyFile}.tmp`, JSON.stringify(sidecar.addresses));
    await rename(`${readyFile}.tmp`, readyFile);
  }
  const ended = await Promise.race([
    child.exited.then(() => 'agent' as const),
    sidecar.closed.then(() => 'sidecar' as const),
    new Promise<'signal'>((resolve) => {
      if (ctx.signal.aborted) resolve('signal');
      else ctx.signal.addEventListener('abort', () => resolve('signal'), { once: true });
    }),
  ]);
  if (ended === 'sidecar') {
    log.error('the sidecar stopped; stopping the agent');
    child.kill('SIGTERM');
  }
  log.info({ ended }, ended === 'agent' ? 'the agent exited; stopping the sidecar' : 'stopping the agent and the sidecar');
  // Both at once: the sidecar withdraws its registration and drains while the agent shuts down.
  const [code] = await Promise.all([stopAgent(child, config.shutdown.drainTimeout + AGENT_GRACE_MS, log), sidecar.close()]);
  return code;
}

/** The agent's environment: ours with AGENTMESH_URL set, without the sidecar's one-time join token. */
function agentEnv(env: CliContext['env'], outbound: string): Record<string, string | undefined> {
  const { AGENTMESH_IDENTITY_TOKEN: _token, ...rest } = env;
  return { ...rest, AGENTMESH_URL: outbound };
}

function spawnAgent(program: string, argv: string[], env: Record<string, string | undefined>, log: Logger): AgentProcess {
  const child = spawn(program, argv, { env, stdio: 'inherit' });
  let running = true;
  const exited = new Promise<number>((resolve) => {
    child.once('error', (err) => {
      log.error({ err, command: program }, `cannot start the agent command '${program}': ${err.message}`);
      running = false;
      resolve(127);
    });
    child.once('exit', (code, signal) => {
      running = false;
      log.info({ code, signal, pid: child.pid }, 'agent exited');
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
  log.info({ pid: child.pid, command: [program, ...argv] }, 'agent started');
  return { exited, running: () => running, kill: (signal) => { if (running) child.kill(signal); } };
}

/** Waits for the agent to exit; SIGKILL after `graceMs`. */
async function stopAgent(agent: AgentProcess, graceMs: number, log: Logger): Promise<number> {
  const timer = setTimeout(() => {
    log.warn({ graceMs }, 'the agent did not exit in time; killing it');
    agent.kill('SIGKILL');
  }, graceMs);
  try {
    return await agent.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** The signal main.ts aborted with (SIGINT or SIGTERM); SIGTERM for any other reason. */
function signalOf(signal: AbortSignal): NodeJS.Signals {
  return signal.reason === 'SIGINT' ? 'SIGINT' : 'SIGTERM';
}
