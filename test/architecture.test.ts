// Pins the shape of the code: imports flow sdk ← registry ← sidecar, other folders enter a folder only
// through its entries, shipped code never loads test or example code (but for the lazily loaded demo),
// and the package's public surface (package.json "exports", the sdk's exported names) changes only on purpose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FOLDERS = ['sdk', 'registry', 'sidecar', 'examples', 'test', 'bench'] as const;
const LAYERS = ['sdk', 'registry', 'sidecar'] as const;
type Layer = typeof LAYERS[number];
/** What each layer may import from the others (sdk ← registry ← sidecar). */
const MAY_IMPORT: Record<Layer, readonly Layer[]> = { sdk: [], registry: ['sdk'], sidecar: ['sdk', 'registry'] };
/** The package's entry points (pinned below); other folders may import these files and no others. */
const EXPORTS = {
  './sdk': './sdk/index.ts',
  './sdk/errors': './sdk/errors.ts',
  './sdk/headers': './sdk/mesh-headers.ts',
  './registry': './registry/index.ts',
  './sidecar': './sidecar/index.ts',
};
/** Each folder's index.ts, and the sdk's import-free second and third entries (error catalog, header names). */
const ENTRIES = new Set(Object.values(EXPORTS).map((p) => p.slice(2)));
/** The one place shipped code loads example code: `agentmesh demo`, imported lazily by the CLI entry. */
const ALLOWED_EXAMPLE_IMPORTS = new Set(['sidecar/main.ts -> examples/demo/run.ts']);

interface Edge { from: string; to: string; line: number; specifier: string }

function tsFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(join(ROOT, dir))) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) tsFiles(path, out);
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Static imports, re-exports, side-effect imports and dynamic import('…') with a literal, by a simple regex. */
const IMPORT = /\b(?:import|export)\s[^;'"]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|\bimport\s+['"]([^'"]+)['"]/g;

function importsOf(file: string): Edge[] {
  const source = readFileSync(join(ROOT, file), 'utf8')
    // Drop comment lines so prose that mentions an import is not read as one.
    .split('\n').map((l) => (/^\s*(\/\/|\*|\/\*)/.test(l) ? '' : l)).join('\n');
  const edges: Edge[] = [];
  for (const m of source.matchAll(IMPORT)) {
    const specifier = m[1] ?? m[2] ?? m[3] ?? '';
    if (!specifier.startsWith('.')) continue;
    const to = normalize(join(dirname(file), specifier)).split('\\').join('/');
    edges.push({ from: file, to, specifier, line: source.slice(0, m.index).split('\n').length });
  }
  return edges;
}

const top = (path: string): string => path.split('/')[0] ?? '';
const isTest = (path: string): boolean => path.endsWith('.test.ts');
/** Test and benchmark code, which may reach anything (it tests internals and builds worlds). */
const isTestSupport = (path: string): boolean => isTest(path) || /(^|\/)test-support\//.test(path) || top(path) === 'test' || top(path) === 'bench';
const show = (e: Edge): string => `${e.from}:${e.line} imports '${e.specifier}' (${e.to})`;

const edges = FOLDERS.flatMap((f) => tsFiles(f)).flatMap(importsOf);

test('the import scan sees the code it checks', () => {
  assert.ok(edges.length > 200, `only ${edges.length} imports found: the scan is broken`);
  assert.ok(edges.some((e) => e.from === 'sidecar/sidecar.ts' && e.to === 'registry/index.ts'));
  assert.ok(edges.some((e) => e.from === 'sidecar/main.ts' && e.to === 'examples/demo/run.ts'), 'dynamic imports are seen');
});

test('imports flow one way: sdk ← registry ← sidecar', () => {
  const bad = edges.filter((e) => {
    const from = top(e.from) as Layer;
    const to = top(e.to) as Layer;
    return LAYERS.includes(from) && LAYERS.includes(to) && from !== to && !isTestSupport(e.from) && !MAY_IMPORT[from].includes(to);
  });
  assert.deepEqual(bad.map(show), [], 'sdk imports neither registry nor sidecar; registry never imports sidecar');
});

test('other folders enter sdk, registry and sidecar only through their entries (index.ts, sdk/errors.ts, sdk/mesh-headers.ts)', () => {
  const bad = edges.filter((e) => LAYERS.includes(top(e.to) as Layer) && top(e.from) !== top(e.to) && !isTestSupport(e.from) && !ENTRIES.has(e.to));
  assert.deepEqual(bad.map(show), []);
});

test('shipped code never imports test or bench code, nor examples but for the lazily loaded demo', () => {
  const shipped = (path: string) => !isTestSupport(path) && (LAYERS.includes(top(path) as Layer) || top(path) === 'examples');
  const bad = edges.filter((e) => shipped(e.from) && (
    top(e.to) === 'test' || top(e.to) === 'bench' || /(^|\/)test-support\//.test(e.to) || isTest(e.to)
    || (top(e.to) === 'examples' && top(e.from) !== 'examples' && !ALLOWED_EXAMPLE_IMPORTS.has(`${e.from} -> ${e.to}`))));
  assert.deepEqual(bad.map(show), []);
  const demo = edges.find((e) => e.from === 'sidecar/main.ts' && e.to === 'examples/demo/run.ts');
  assert.ok(demo, 'the CLI loads the demo');
  const line = readFileSync(join(ROOT, 'sidecar/main.ts'), 'utf8').split('\n')[demo.line - 1] ?? '';
  assert.match(line, /await import\(/, 'sidecar/main.ts loads the demo lazily (a dynamic import), so the sidecar never loads it');
});

test('the package exports exactly these entry points, built to dist/ with their declarations', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown>; bin: Record<string, string> };
  const built = Object.fromEntries(Object.entries(EXPORTS).map(([name, source]) => {
    const stem = source.replace(/^\.\//, './dist/').replace(/\.ts$/, '');
    return [name, { types: `${stem}.d.ts`, default: `${stem}.js` }];
  }));
  assert.deepEqual(pkg.exports, { ...built, './package.json': './package.json' });
  assert.deepEqual(pkg.bin, { agentmesh: 'bin/agentmesh.mjs' });
});

test('the sdk exports exactly these names', async () => {
  const sdk = await import('../sdk/index.ts') as Record<string, unknown>;
  assert.deepEqual(Object.keys(sdk).sort(), [
    'BUDGET_HEADER', 'CALLER_HEADER', 'CHAIN_HEADER', 'DEADLINE_HEADER', 'DEDUPLICATED_HEADER', 'DEFAULT_SIDECAR_URL', 'ERROR_CATALOG',
    'ERROR_HEADER', 'HOPS_HEADER', 'MESH_HEADERS', 'MeshError', 'REQUEST_ID_HEADER', 'RETRIED_HEADER', 'STATUS_HEADER',
    'USER_HEADER', 'artifactUpdate', 'callerOf', 'connectMesh', 'dataPart', 'isMeshError', 'meshContextOf', 'message',
    'newTask', 'parseHeaderInt', 'parseRequestId', 'serveAgent', 'statusUpdate', 'textOf', 'textPart',
  ], 'the values sdk/index.ts exports (update README and this list together)');
  assert.deepEqual(sdkTypeNames(), [
    'AgentQuery', 'AgentServer', 'CallOptions', 'ConnectOptions', 'HeaderValue', 'Mesh', 'MeshAgent', 'MeshContext', 'MeshErrorCode',
    'MeshErrorOptions', 'MeshMcpServer', 'SendOptions', 'ServeAgentOptions', 'SkillInput',
  ], 'the types sdk/index.ts exports');
});

/** Type-only names: `type X` in sdk/index.ts's export lists, and the types and interfaces of files it re-exports with `*`. */
function sdkTypeNames(): string[] {
  const index = readFileSync(join(ROOT, 'sdk/index.ts'), 'utf8');
  const names = [...index.matchAll(/\btype\s+(\w+)/g)].map((m) => m[1] ?? '');
  for (const [, file] of index.matchAll(/export\s+\*\s+from\s+['"](\.[^'"]+)['"]/g)) {
    const source = readFileSync(join(ROOT, 'sdk', file ?? ''), 'utf8');
    names.push(...[...source.matchAll(/^export\s+(?:type|interface)\s+(\w+)/gm)].map((m) => m[1] ?? ''));
  }
  return names.sort();
}
