// identity config: certificate files, or the online CA with a join token (or a kept SVID); every bad
// combination is refused naming the key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig } from './config.ts';

const base = { trustDomain: 'mesh.local', bundle: 'b.pem' };
const ca = 'https://ca.mesh.local:15100';

test('identity: files, or identity.ca with a token, a token file, or a kept SVID', () => {
  assert.equal(resolveConfig({ file: { identity: { ...base, cert: 'c', key: 'k' } } }).identity.ca, undefined);
  assert.equal(resolveConfig({ file: { identity: { ...base, ca, token: 't' } } }).identity.token, 't');
  assert.equal(resolveConfig({ file: { identity: { ...base, ca, tokenFile: '/run/secrets/token', cert: 'c', key: 'k' } } }).identity.tokenFile, '/run/secrets/token');
  assert.equal(resolveConfig({ file: { identity: { ...base, ca, cert: 'c', key: 'k' } } }).identity.cert, 'c');
  const fromEnv = resolveConfig({ file: { identity: base }, env: { AGENTMESH_IDENTITY_CA: ca, AGENTMESH_IDENTITY_TOKEN: 'secret' } });
  assert.deepEqual([fromEnv.identity.ca, fromEnv.identity.token], [ca, 'secret']);
});

test('identity: misconfiguration names the key', () => {
  const bad = (identity: Record<string, unknown>, message: RegExp) => assert.throws(() => resolveConfig({ file: { identity } }), message);
  bad({ ...base }, /identity\.cert: required \(or set identity\.ca/);
  bad({ ...base, cert: 'c' }, /identity\.key: required/);
  bad({ ...base, cert: 'c', key: 'k', token: 't' }, /identity\.token: a join token needs identity\.ca/);
  bad({ ...base, ca }, /identity\.token: with identity\.ca, set identity\.token or identity\.tokenFile/);
  bad({ ...base, ca, token: 't', tokenFile: 'f' }, /identity\.tokenFile: set identity\.token or identity\.tokenFile, not both/);
  bad({ ...base, ca, token: 't', cert: 'c' }, /identity\.key: identity\.cert and identity\.key go together/);
  bad({ ...base, ca: 'http://ca:1', token: 't' }, /identity\.ca: expected the https:\/\/ URL/);
  // One run names every problem: the combination rules also run when another identity key is wrong.
  bad({ trustDomain: 'Mesh', cert: 'c' }, /identity\.trustDomain[\s\S]*identity\.bundle[\s\S]*identity\.key: required/);
});
