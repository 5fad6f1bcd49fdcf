// The CLI as a newcomer meets it: --help on every command (exit 0), --version, one-line errors (a stack
// only with --debug), "did you mean" for commands, config keys and AGENTMESH_* variables, --json output,
// and a port in use named by its config key at start-up.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { USAGE } from '../sidecar/cli/commands.ts';
import { commandNames } from '../sidecar/cli/help.ts';
import { createTestPki } from './support/certs.ts';
import { ROOT, runCli } from './support/sidecar-process.ts';

describe('agentmesh CLI help and errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-clihelp-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('--help on every command exits 0 with that command\'s usage', async () => {
    const commands = commandNames(USAGE);
    assert.ok(commands.includes('tap') && commands.includes('check') && commands.includes('sidecar'));
    for (const command of commands) {
      const out = await runCli([command, '--help']);
      assert.equal(out.code, 0, `${command} --help: ${out.stderr}`);
      assert.match(out.stdout, new RegExp(`^ {2}${command}\\b`, 'm'), `${command} --help shows its usage`);
    }
    const all = await runCli(['--help']);
    assert.equal(all.code, 0);
    assert.match(all.stdout, /config keys/);
  });

  test('--version prints the package version, also as JSON', async () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const out = await runCli(['--version']);
    assert.equal(out.code, 0);
    assert.equal(out.stdout.trim(), `agentmesh ${version}`);
    const json = JSON.parse((await runCli(['--version', '--json'])).stdout) as { version: string };
    assert.equal(json.version, version);
  });

  test('an error is one line with its code; the stack only with --debug', async () => {
    const out = await runCli(['agents', '--url', 'http://127.0.0.1:9']);
    assert.equal(out.code, 1);
    assert.equal(out.stderr.trim().split('\n').length, 1, out.stderr);
    assert.match(out.stderr, /^agentmesh: SIDECAR_UNREACHABLE: /);
    const debug = await runCli(['agents', '--url', 'http://127.0.0.1:9', '--debug']);
    assert.equal(debug.code, 1);
    assert.match(debug.stderr, /^\s+at /m);
  });

  test('did you mean: a command, a config key in a flag or a file', async () => {
    const command = await runCli(['agnets']);
    assert.equal(command.code, 1);
    assert.match(command.stderr, /unknown command 'agnets' \(did you mean 'agents'\?\)/);
    const path = join(dir, 'typo.yaml');
    writeFileSync(path, 'identity: { trustDomain: m.local, cert: a, key: b, bundle: c }\nregistyr: {}\n');
    const file = await runCli(['validate', '--config', path]);
    assert.match(file.stderr, /did you mean registry for registyr\?/);
    const flag = await runCli(['validate', '--config', path, '--log.acess', 'true']);
    assert.match(flag.stderr, /--log\.acess: unknown config key \(did you mean --log\.access\?\)/);
  });

  test('validate checks the files and the identity; --json', async () => {
    const pki = await createTestPki({ trustDomain: 'clihelp.test' });
    try {
      const files = await pki.issue('spiffe://clihelp.test/agent/alice');
      const good = join(dir, 'good.yaml');
      writeFileSync(good, stringify({ identity: files, agent: { url: 'http://127.0.0.1:9', name: 'alice' } }));
      const ok = JSON.parse((await runCli(['validate', '--config', good, '--json'])).stdout) as { valid: boolean };
      assert.equal(ok.valid, true);
      const missing = join(dir, 'missing.yaml');
      writeFileSync(missing, stringify({ identity: { ...files, cert: join(dir, 'none.pem') } }));
      const bad = await runCli(['validate', '--config', missing]);
      assert.equal(bad.code, 1);
      assert.match(bad.stdout, /✖ identity\.cert: cannot read .*none\.pem/);
      const notOwned = join(dir, 'bob.yaml');
      writeFileSync(notOwned, stringify({ identity: files, agent: { url: 'http://127.0.0.1:9', name: 'bob' } }));
      const json = JSON.parse((await runCli(['validate', '--config', notOwned, '--json'])).stdout) as { valid: boolean; problems: string[] };
      assert.equal(json.valid, false);
      assert.match(json.problems.join('\n'), /does not own the agent name 'bob'/);
    } finally {
      await pki.close();
    }
  });

  test('the sidecar warns about a misspelled AGENTMESH_* variable and names a port in use by its config key', async () => {
    const pki = await createTestPki({ trustDomain: 'clihelp.test' });
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as { port: number }).port;
      const path = join(dir, 'sidecar.yaml');
      writeFileSync(path, stringify({
        identity: await pki.issue('spiffe://clihelp.test/agent/x'), registry: { dir: join(dir, 'registry') },
        listen: { outbound: '127.0.0.1:0', inbound: `127.0.0.1:${port}`, admin: '127.0.0.1:0' },
      }));
      const out = await runCli(['sidecar', '--config', path], { env: { AGENTMESH_REGISTRY_TTTL: '5s' } });
      assert.equal(out.code, 1);
      assert.match(out.stdout, /AGENTMESH_REGISTRY_TTTL is not a variable agentmesh reads \(did you mean AGENTMESH_REGISTRY_TTL\?\)/);
      assert.match(out.stderr, new RegExp(`^agentmesh: CONFIG_INVALID: listen\\.inbound: 127\\.0\\.0\\.1:${port} is already in use`));
      assert.doesNotMatch(out.stderr, /^\s+at /m);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
      await pki.close();
    }
  });
});
