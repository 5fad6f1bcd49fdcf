// The package version for `agentmesh --version`, read from package.json next to the sources or dist/.
import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  for (const path of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'agentmesh' && typeof pkg.version === 'string') return pkg.version;
    } catch { /* try the next location */ }
  }
  return 'unknown';
}
