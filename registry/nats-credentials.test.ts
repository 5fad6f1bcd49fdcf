// registry.credentials against a real nats-server with a password user: the right file opens the
// registry, no file or a wrong password is refused by the server, and a missing or malformed file
// fails before connecting, naming the key and never echoing the file's content.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMeshError } from '../sdk/index.ts';
import { openRegistry } from './index.ts';
import { readCredentials } from './nats-connect.ts';
import { startNatsServer } from '../test/support/nats-server.ts';
import { agentRecord, cleanup, unique, until } from '../test/support/registry-records.ts';

test('a credentials file opens the registry; anonymous and wrong passwords are refused by NATS', async (t) => {
  const defer = cleanup(t);
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-creds-'));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  const password = `pw-${unique('p')}`;
  const nats = await startNatsServer({
    config: JSON.stringify({ jetstream: { store_dir: join(dir, 'js') }, authorization: { users: [{ user: 'sidecar', password }] } }),
  });
  defer(() => nats[Symbol.asyncDispose]());
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };
  const good = file('good.yaml', `user: sidecar\npassword: ${password}\n`);
  const bucket = unique('creds');
  const registry = await openRegistry({ nats: nats.url, bucket, ttlMs: 5000, natsAccess: { credentials: good } });
  defer(() => registry.close());
  const name = unique('a');
  await registry.announce(agentRecord(name));
  await until(registry, 'the announced agent', () => registry.agentInstances(name)[0]);

  const refused = async (natsAccess: { credentials?: string }) => {
    const err = await openRegistry({ nats: nats.url, bucket, ttlMs: 5000, timeoutMs: 3000, natsAccess }).then((r) => r.close(), (e: unknown) => e);
    assert.ok(isMeshError(err) && err.code === 'REGISTRY_UNAVAILABLE', String(err));
    assert.match(err.message, /Authorization Violation/i);
    assert.ok(!err.message.includes(password), 'no password in the error');
  };
  await refused({});
  await refused({ credentials: file('wrong.json', JSON.stringify({ user: 'sidecar', password: 'wrong' })) });
});

test('a missing or malformed credentials file fails naming registry.credentials, without its content', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-creds-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const configError = async (path: string, message: RegExp) => {
    const err = await readCredentials(path).then(() => undefined, (e: unknown) => e);
    assert.ok(isMeshError(err) && err.code === 'CONFIG_INVALID', String(err));
    assert.match(err.message, /^registry\.credentials: /);
    assert.match(err.message, message);
    assert.ok(!err.message.includes('s3cret'), 'no secret in the error');
  };
  await configError(join(dir, 'absent.creds'), /cannot read .*absent\.creds: ENOENT/);
  const write = (name: string, text: string) => { writeFileSync(join(dir, name), text); return join(dir, name); };
  await configError(write('typo.yaml', 'user: a\npasword: s3cret\n'), /expected a NATS \.creds file, or a YAML\/JSON file with \{ user, password \} or \{ token \}/);
  await configError(write('plain.txt', 's3cret'), /expected a NATS \.creds file/);
  await configError(write('half.creds', '-----BEGIN NATS USER JWT-----\ns3cret\n------END NATS USER JWT------\n'), /no nkey seed/);
  await readCredentials(write('token.yaml', 'token: s3cret\n'));
});
