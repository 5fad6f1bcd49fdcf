#!/usr/bin/env node
// The `agentmesh` command: runs the compiled JavaScript in dist/ (`npm run build`) when it is there and
// newer than every source file (an installed package ships dist/ and no sources); in a clone with edited
// sources it loads them through tsx (a devDependency; about 40 MB more RSS), so a stale build never runs.
// Before anything else loads, it holds V8's young generation small (sidecar/young-generation.ts) unless
// node was given its own young-generation flags.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = join(root, 'dist/sidecar/main.js');

/** The newest mtime (ms) of the non-test .ts files under the folders the build compiles. */
function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function buildIsFresh() {
  if (!existsSync(built)) return false;
  const sources = ['sdk', 'registry', 'sidecar', 'examples'].map((d) => join(root, d)).filter((d) => existsSync(d));
  return Math.max(0, ...sources.map(newestSource)) <= statSync(built).mtimeMs;
}

/** Holds the young generation small unless node's own flags set it. */
function holdYoungGeneration(module) {
  if (!module.youngGenerationConfigured(process.execArgv, process.env.NODE_OPTIONS)) module.holdYoungGeneration();
}

if (buildIsFresh()) {
  holdYoungGeneration(await import(pathToFileURL(join(root, 'dist/sidecar/young-generation.js')).href));
  await import(pathToFileURL(built).href);
} else if (!existsSync(join(root, 'sidecar/main.ts'))) {
  process.stderr.write(`agentmesh: ${built} is missing: this package was packed without its build (npm run build)\n`);
  process.exit(1);
} else {
  if (existsSync(built)) process.stderr.write('agentmesh: dist/ is older than the sources; running them through tsx (npm run build refreshes it)\n');
  const { register } = await import('tsx/esm/api');
  register();
  holdYoungGeneration(await import('../sidecar/young-generation.ts'));
  await import('../sidecar/main.ts');
}
