// `agentmesh COMMAND --help`: the lines of the usage text that belong to one command (so a command
// added to USAGE gets its help for free), and the list of command names for "did you mean". Pure.

/** The command words USAGE lists (the first word of each entry line). */
export function commandNames(usage: string): string[] {
  const names = new Set<string>();
  for (const line of usage.split('\n')) {
    const m = /^ {2}([a-z][a-z-]*)\b/.exec(line);
    if (m?.[1]) names.add(m[1]);
  }
  return [...names];
}

/** The usage entries of `command` with their continuation lines, or undefined for an unknown command. */
export function commandHelp(usage: string, command: string): string | undefined {
  const lines = usage.split('\n');
  const out: string[] = [];
  let inside = false;
  for (const line of lines) {
    if (/^ {2}[a-z]/.test(line)) inside = line.startsWith(`  ${command} `) || line.trimEnd() === `  ${command}` || line.startsWith(`  ${command}  `);
    else if (!/^ {3,}/.test(line)) inside = false;
    if (inside) out.push(line);
  }
  return out.length === 0 ? undefined : `usage: agentmesh\n${out.join('\n')}`;
}
