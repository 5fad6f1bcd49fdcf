// Glob patterns of the policy (identities, names, tools): `*` matches within one path segment (no `/`),
// `**` matches anything, `?` one character; everything else is literal. Compiled once per policy version.

/** A matcher for one glob (an exact string when it has no wildcard). */
export function compileGlob(glob: string): (value: string) => boolean {
  if (!/[*?]/.test(glob)) return (value) => value === glob;
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? '';
    if (c === '*' && glob[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  const re = new RegExp(`^${source}$`, 's');
  return (value) => re.test(value);
}

/** A matcher for any of several globs. */
export function compileGlobs(globs: readonly string[]): (value: string) => boolean {
  const matchers = globs.map(compileGlob);
  return (value) => matchers.some((m) => m(value));
}
