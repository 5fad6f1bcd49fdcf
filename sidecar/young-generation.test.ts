import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { youngGenerationConfigured } from './young-generation.ts';

test('node\'s own young-generation flags, on the command line or in NODE_OPTIONS, win', () => {
  assert.equal(youngGenerationConfigured([], undefined), false);
  assert.equal(youngGenerationConfigured(['--max-old-space-size=512'], '--enable-source-maps'), false);
  assert.equal(youngGenerationConfigured(['--max-semi-space-size=8'], undefined), true);
  assert.equal(youngGenerationConfigured([], '--enable-source-maps --max-semi-space-size=2'), true);
  assert.equal(youngGenerationConfigured(['--semi-space-growth-factor=1'], ''), true);
  assert.equal(youngGenerationConfigured(['--max_semi_space_size=64'], undefined), true, 'V8 takes its flags with underscores too');
  assert.equal(youngGenerationConfigured([], '--min_semi-space_size=1'), true);
});

/** A process that allocates like a busy proxy (short-lived objects, a few thousand alive) and prints its largest new space (MB). */
function largestNewSpace(hold: boolean, nodeArgs: string[] = []): number {
  const script = `
    import { getHeapSpaceStatistics } from 'node:v8';
    import { holdYoungGeneration, newSpaceBytes, youngGenerationConfigured } from ${JSON.stringify(new URL('./young-generation.ts', import.meta.url).href)};

    const stop = ${hold} && !youngGenerationConfigured(process.execArgv, process.env.NODE_OPTIONS) ? holdYoungGeneration(2) : undefined;
    let largest = 0, keep = [];
    for (let round = 0; round < 200; round++) {
      for (let i = 0; i < 10000; i++) { keep.push({ i, s: 'x' + i, a: [i] }); if (keep.length > 3000) keep = []; }
      largest = Math.max(largest, newSpaceBytes());
      await new Promise((resolve) => setImmediate(resolve));
    }
    stop?.();
    process.stdout.write(String(largest / 2 ** 20));`;
  const run = spawnSync(process.execPath, [...nodeArgs, '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return Number(run.stdout);
}

test('held at 2 MB semi-spaces, the new space stays at 4 MB where V8 alone grows it to 16 or more', () => {
  assert.ok(largestNewSpace(false) >= 16);
  assert.equal(largestNewSpace(true), 4);
});

test('with --max-semi-space-size given to node, holding changes nothing', () => {
  assert.equal(largestNewSpace(true, ['--max-semi-space-size=8']), 16);
});
