// Command-line parsing for `agentmesh`: positional words, `--flag value`, `--flag=value` and bare
// boolean flags. Pure; main.ts owns process.argv.
import { MeshError } from '../../sdk/errors.ts';

export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string | true>;
  /** Every value of each flag given more than once or once (`--agent a --agent b`), in order. */
  lists: Map<string, string[]>;
}

export function parseArgs(argv: readonly string[], booleans: ReadonlySet<string>): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  const lists = new Map<string, string[]>();
  const set = (name: string, value: string): void => {
    flags.set(name, value);
    lists.set(name, [...lists.get(name) ?? [], value]);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (eq !== -1) set(name, arg.slice(eq + 1));
    else if (booleans.has(name)) flags.set(name, true);
    else {
      const value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) throw new MeshError('CONFIG_INVALID', `--${name} needs a value`);
      set(name, value);
      i++;
    }
  }
  return { positionals, flags, lists };
}

/** All values of a repeatable flag, also split at commas (`--agent a,b --agent c`). */
export function listFlag(args: ParsedArgs, name: string): string[] {
  return (args.lists.get(name) ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

/** A string flag's value, or a clear error naming the flag when it is required and missing. */
export function stringFlag(args: ParsedArgs, name: string, required: true): string;
export function stringFlag(args: ParsedArgs, name: string, required?: false): string | undefined;
export function stringFlag(args: ParsedArgs, name: string, required = false): string | undefined {
  const value = args.flags.get(name);
  if (value === true) throw new MeshError('CONFIG_INVALID', `--${name} needs a value`);
  if (value === undefined && required) throw new MeshError('CONFIG_INVALID', `missing required flag --${name}`);
  return value;
}
