// The process entry for `agentmesh`: the only module that reads process.argv and process.env, installs
// signal handlers and sets exit codes. Everything else is a function call.
import { setFlagsFromString } from 'node:v8';
import { MeshError } from '../sdk/errors.ts';
import { parseArgs } from './cli/args.ts';
import { USAGE, runAgents, runCa, runCall, runSidecar, runTools, runValidate, type CliContext } from './cli/commands.ts';
import { formatCliError } from './cli/cli-error.ts';
import { commandHelp, commandNames } from './cli/help.ts';
import { didYouMean } from './suggest.ts';
import { packageVersion } from './cli/version.ts';

const BOOLEANS = new Set(['json', 'help', 'follow', 'version', 'debug', 'keep']);

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, BOOLEANS);
  const stop = new AbortController();
  const ctx: CliContext = { out: (line) => process.stdout.write(`${line}\n`), env: process.env, signal: stop.signal };
  const command = args.positionals[0];
  if (args.flags.has('version') || command === 'version') {
    process.stdout.write(args.flags.get('json') === true ? `${JSON.stringify({ version: packageVersion(), node: process.version })}\n` : `agentmesh ${packageVersion()}\n`);
    return 0;
  }
  if (!command || command === 'help' || args.flags.has('help')) {
    const topic = command === 'help' ? args.positionals[1] : command;
    process.stdout.write(`${(topic && commandHelp(USAGE, topic)) || USAGE}\n`);
    return command || args.flags.has('help') ? 0 : 1;
  }
  // The reason is the signal's name: `agentmesh run` forwards the same signal to the agent.
  const onSignal = (signal: NodeJS.Signals) => stop.abort(signal);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  switch (command) {
    case 'sidecar': {
      leanWasm();
      const { sidecar } = await runSidecar(args, ctx);
      if (!stop.signal.aborted) await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
      await sidecar.close();
      return 0;
    }
    case 'run': {
      leanWasm();
      return (await import('./cli/run.ts')).runWithSidecar(args, ctx);
    }
    case 'validate': return runValidate(args, ctx);
    case 'ca': return runCa(args, ctx);
    case 'agents': return runAgents(args, ctx);
    case 'tools': return args.positionals[1] === 'approve' ? (await import('./cli/tools.ts')).runToolsApprove(args, ctx) : runTools(args, ctx);
    case 'audit': return (await import('./cli/audit.ts')).runAudit(args, ctx);
    case 'call': return runCall(args, ctx);
    case 'nats': return (await import('./cli/nats.ts')).runNats(args, ctx);
    case 'policy': return (await import('./cli/policy.ts')).runPolicy(args, ctx);
    case 'explain': return (await import('./cli/policy.ts')).runExplain(args, ctx);
    case 'demo': {
      const { runDemo } = await import('../examples/demo/run.ts');
      return runDemo({ out: ctx.out, env: ctx.env, signal: stop.signal, keep: args.flags.get('keep') === true });
    }
    case 'tap': return (await import('./cli/tap.ts')).runTap(args, ctx);
    case 'check': return (await import('./cli/check.ts')).runCheck(args, ctx);
    default:
      throw new MeshError('CONFIG_INVALID', `unknown command '${command}'${didYouMean(command, commandNames(USAGE))}; 'agentmesh --help' lists the commands`);
  }
}

/**
 * undici parses HTTP with llhttp compiled to WebAssembly. V8's optimizing tier-up of that module peaks
 * at ~35 MB and keeps ~8 MB; baseline (Liftoff) code costs ~5 µs more per parsed response. For a
 * sidecar the memory matters more (BENCHMARKS.md). Set before the first connection compiles it.
 */
function leanWasm(): void {
  setFlagsFromString('--liftoff-only');
}

main(process.argv.slice(2)).then(
  // Exit explicitly: pooled keep-alive sockets or a draining NATS connection must not hold the process.
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(formatCliError(err, process.argv.includes('--debug')));
    process.exit(1);
  },
);
