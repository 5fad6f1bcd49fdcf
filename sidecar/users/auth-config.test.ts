import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMeshError } from '../../sdk/errors.ts';
import { resolveConfig } from '../config.ts';
import { createUserVerifier } from './user-token.ts';

const identity = { trustDomain: 'mesh.test', cert: 'c.pem', key: 'k.pem', bundle: 'b.pem' };
const jwt = { issuer: 'https://idp.test', audiences: 'agentmesh', jwksUrl: 'https://idp.test/jwks.json' };

function refusal(file: Record<string, unknown>): string {
  try {
    resolveConfig({ file: { identity, ...file } });
  } catch (err) {
    assert.ok(isMeshError(err, 'CONFIG_INVALID'));
    return err.message;
  }
  return assert.fail('the config was accepted');
}

test('auth.jwt: algorithm allowlist, leeway, JWKS source and URL scheme fail naming the key', () => {
  assert.match(refusal({ auth: { jwt: { ...jwt, algorithms: ['none'] } } }), /auth\.jwt\.algorithms\.0: .*none and HS\* are never accepted/);
  assert.match(refusal({ auth: { jwt: { ...jwt, algorithms: ['HS256'] } } }), /auth\.jwt\.algorithms\.0/);
  assert.match(refusal({ auth: { jwt: { ...jwt, leeway: '61s' } } }), /auth\.jwt\.leeway: expected at most 60s/);
  assert.match(refusal({ auth: { jwt: { ...jwt, jwksUrl: 'http://idp.test/jwks.json' } } }), /auth\.jwt\.jwksUrl: expected an https:\/\/ URL/);
  assert.match(refusal({ auth: { jwt: { ...jwt, jwksFile: 'jwks.json' } } }), /auth\.jwt: expected exactly one of jwksFile or jwksUrl/);
  assert.match(refusal({ auth: { jwt: { ...jwt, typo: 1 } } }), /auth\.jwt/);
  assert.match(refusal({ delegation: { callBudget: 0 } }), /delegation\.callBudget/);
  assert.match(refusal({ rateLimits: [{ to: { agent: 'x' }, rate: 'fast' }] }), /rateLimits\.0\.rate: expected a rate like 20\/s/);
  const ok = resolveConfig({ file: { identity, auth: { jwt }, delegation: { callBudget: 5 } } });
  assert.deepEqual(ok.auth.jwt?.audiences, ['agentmesh']);
  assert.deepEqual(ok.auth.jwt?.algorithms, ['RS256', 'ES256']);
  assert.equal(ok.auth.jwt?.leeway, 30_000);
  const flags = resolveConfig({ file: { identity }, flags: { 'auth.jwt.issuer': 'https://idp.test', 'auth.jwt.audiences': 'a', 'auth.jwt.jwksUrl': 'https://idp.test/k' } });
  assert.equal(flags.auth.jwt?.issuer, 'https://idp.test');
});

test('a JWKS file that is missing, not JSON, or holds a private or symmetric key fails start-up naming auth.jwt.jwksFile', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-jwks-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = (file: string) => ({ issuer: 'i', audiences: ['a'], jwksFile: file, jwksCooldown: 30_000, algorithms: ['ES256' as const], leeway: 0, claims: [] });
  const write = (name: string, text: string) => { writeFileSync(join(dir, name), text); return join(dir, name); };
  const cases: [string, RegExp][] = [
    [join(dir, 'missing.json'), /cannot read/],
    [write('bad.json', '{'), /is not JSON/],
    [write('empty.json', '{"keys":[]}'), /at least one key/],
    [write('private.json', '{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"secret"}]}'), /private or symmetric/],
    [write('oct.json', '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}'), /private or symmetric/],
  ];
  for (const [file, why] of cases) {
    await assert.rejects(createUserVerifier(config(file)), (err) => isMeshError(err, 'CONFIG_INVALID') && /auth\.jwt\.jwksFile/.test(err.message) && why.test(err.message), file);
  }
});
