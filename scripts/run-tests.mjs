// Test runner: Node 20 does not discover .ts test files, so this lists them and runs node:test on them,
// two files at a time; then the files marked `// @serial` in their first lines one at a time. Those are
// acceptance tests whose figures are timings or memory of whole processes (overload, floods, leaks): a
// second test file running beside them would take CPU from the processes they measure.
// Usage: node scripts/run-tests.mjs [path-filter ...]
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const roots = ['sdk', 'registry', 'sidecar', 'examples', 'test'];
const skip = new Set(['node_modules', 'dist', '.agentmesh']);

function find(dir, out) {
  let entries;
  try { entries = readdirSync(dir); } catch { return out; }
  for (const name of entries) {
    if (skip.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) find(path, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

const filters = process.argv.slice(2);
const files = roots.flatMap((r) => find(join(root, r), []))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
const serial = (file) => readFileSync(join(root, file), 'utf8').slice(0, 2000).includes('// @serial');
const batches = [[files.filter((f) => !serial(f)), 2], [files.filter(serial), 1]].filter(([list]) => list.length > 0);

function run(list, concurrency) {
  const child = spawn(process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${concurrency}`, ...list],
    { cwd: root, stdio: 'inherit' });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

let failed = 0;
for (const [list, concurrency] of batches) {
  if (batches.length > 1) console.log(`\nrun-tests: ${list.length} file(s), ${concurrency} at a time${concurrency === 1 ? ' (// @serial: timing and memory acceptance tests)' : ''}`);
  const code = await run(list, concurrency);
  if (code !== 0) failed = code;
}
process.exit(failed);
