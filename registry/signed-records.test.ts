// The record verifier on its own: what a reader accepts and the reason it gives for everything it
// refuses (bad signature, untrusted chain, expired leaf, identity and name binding, grants), the gate's
// forward-only rule, and MCP server names claimed by two identities.
import { createPrivateKey, generateKeyPairSync, sign as signBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import assert from 'node:assert/strict';
import { createCa, issueWorkload, type PemPair } from '../sidecar/identity/index.ts';
import { createRecordSigner, createRecordVerifier, rejectReason, signGrant, verifyGrant, type SigningIdentity } from './index.ts';
import { RecordGate } from './record-gate.ts';
import { recordKey, type McpRecord, type RegistryRecord } from './record.ts';
import { RecordView } from './view.ts';
import { storedAgentRecord } from '../test/support/registry-records.ts';

const TD = 'mesh.test';
const ca: PemPair = await createCa({ trustDomain: TD });
const verifier = createRecordVerifier({ trustDomain: TD, bundle: () => ca.certPem });

async function workload(name: string, options: { from?: PemPair; notBefore?: Date; notAfter?: Date } = {}): Promise<SigningIdentity> {
  const issuer = options.from ?? ca;
  const id = `spiffe://${TD}/agent/${name}`;
  const pair = await issueWorkload({ caCertPem: issuer.certPem, caKeyPem: issuer.keyPem, id, ...(options.notBefore ? { notBefore: options.notBefore } : {}), ...(options.notAfter ? { notAfter: options.notAfter } : {}) });
  return { id, certPem: pair.certPem, keyPem: pair.keyPem };
}

const sign = (who: SigningIdentity, record: RegistryRecord): Promise<string> => createRecordSigner(() => who).sign(record);
const recordOf = (name: string, identity: string, extra: Partial<RegistryRecord> = {}): RegistryRecord => ({ ...storedAgentRecord(name, 'i1'), identity, ...extra } as RegistryRecord);

async function reason(key: string, value: string): Promise<string> {
  return verifier.verify(key, value).then(() => 'accepted', (err: unknown) => rejectReason(err));
}

test('a record signed by its owner verifies; the payload is the record', async () => {
  const beta = await workload('beta');
  const record = recordOf('beta', beta.id);
  const sealed = await verifier.verify('agents.beta.i1', await sign(beta, record));
  assert.deepEqual(sealed.record, record);
  assert.equal(sealed.granted, false);
});

test('refusals name their reason', async () => {
  const beta = await workload('beta');
  const mallory = await workload('mallory');
  const good = await sign(beta, recordOf('beta', beta.id));
  const [header, payload, signature] = good.split('.');
  const tampered = Buffer.from(JSON.stringify({ ...recordOf('beta', beta.id), endpoint: 'https://evil.example:1' })).toString('base64url');
  assert.equal(await reason('agents.beta.i1', `${header}.${tampered}.${signature}`), 'bad_signature', 'payload changed after signing');
  assert.equal(await reason('agents.beta.i1', `${header}.${payload}.${(signature ?? '').replace(/^../, 'AA')}`), 'bad_signature');
  const otherCa = await createCa({ trustDomain: TD });
  const foreign = await workload('beta', { from: otherCa });
  assert.equal(await reason('agents.beta.i1', await sign(foreign, recordOf('beta', foreign.id))), 'untrusted_chain', 'a chain to a CA not in the bundle');
  const expired = await workload('beta', { notBefore: new Date(Date.now() - 2 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
  assert.equal(await reason('agents.beta.i1', await sign(expired, recordOf('beta', expired.id))), 'expired');
  assert.equal(await reason('agents.beta.i1', await sign(mallory, recordOf('beta', mallory.id))), 'name_not_owned', 'mallory announcing beta');
  assert.equal(await reason('agents.beta.i1', await sign(mallory, recordOf('beta', beta.id))), 'identity_mismatch', 'mallory signing as beta');
  assert.equal(await reason('agents.beta.i1', JSON.stringify(recordOf('beta', beta.id))), 'invalid', 'unsigned');
  assert.equal(await reason('agents.other.i1', good), 'invalid', 'a record moved to another key');
});

test('a grant from a CA in the bundle gives a name; one signed by anyone else is ignored', async () => {
  const mallory = await workload('mallory');
  const granted = await signGrant({ caKeyPem: ca.keyPem, identity: mallory.id, agents: ['beta'], mcp: [] });
  const sealed = await verifier.verify('agents.beta.i1', await sign(mallory, recordOf('beta', mallory.id, { grants: [granted] })));
  assert.equal(sealed.granted, true);
  // Mallory signs her own grant with her workload key, and one with another CA's key.
  const selfMade = await signGrant({ caKeyPem: mallory.keyPem, identity: mallory.id, agents: ['beta'], mcp: [] });
  const otherCa = await createCa({ trustDomain: TD });
  const foreign = await signGrant({ caKeyPem: otherCa.keyPem, identity: mallory.id, agents: ['beta'], mcp: [] });
  for (const grant of [selfMade, foreign]) {
    const err = await verifier.verify('agents.beta.i1', await sign(mallory, recordOf('beta', mallory.id, { grants: [grant] }))).then(() => undefined, (e: unknown) => e);
    assert.equal(rejectReason(err), 'name_not_owned');
    assert.match(String(err), /not signed by a CA in the trust bundle/);
  }
  // A grant for someone else, and an expired one, do not count either.
  const forOther = await signGrant({ caKeyPem: ca.keyPem, identity: `spiffe://${TD}/agent/other`, agents: ['beta'], mcp: [] });
  const old = await signGrant({ caKeyPem: ca.keyPem, identity: mallory.id, agents: ['beta'], mcp: [], ttlMs: -60_000 });
  for (const grant of [forOther, old]) assert.equal(await reason('agents.beta.i1', await sign(mallory, recordOf('beta', mallory.id, { grants: [grant] }))), 'name_not_owned');
});

test('a grant edited after signing, with another alg, or not yet valid is refused, naming why', async () => {
  const roots = [new X509Certificate(ca.certPem).publicKey];
  const mallory = `spiffe://${TD}/agent/mallory`;
  const token = await signGrant({ caKeyPem: ca.keyPem, identity: mallory, agents: ['beta'], mcp: [] });
  assert.deepEqual(verifyGrant(token, roots).agents, ['beta']);
  const [header = '', payload = '', signature = ''] = token.split('.');
  const segment = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  const cases: Array<[string, RegExp]> = [
    [`${header}.${segment({ ...claims, agents: ['beta', 'gamma'] })}.${signature}`, /not signed by a CA/],
    [`${segment({ alg: 'none', typ: 'agentmesh-grant+jwt' })}.${payload}.`, /not an ES256/],
    [`${segment({ alg: 'ES256', typ: 'JWT' })}.${payload}.${signature}`, /not an ES256 agentmesh-grant\+jwt/],
    ['a.b', /not a compact JWS/],
    [`${header}.!!!.${signature}`, /not signed by a CA|malformed/],
  ];
  for (const [bad, why] of cases) assert.throws(() => verifyGrant(bad, roots), why, bad.slice(0, 60));
  // Signed by the CA but not valid yet: refused, not taken on trust.
  const key = createPrivateKey(ca.keyPem);
  const early = await new SignJWT({ agents: ['beta'], mcp: [], nbf: Math.floor(Date.now() / 1000) + 3600 })
    .setProtectedHeader({ alg: 'ES256', typ: 'agentmesh-grant+jwt' }).setSubject(mallory).sign(key);
  assert.throws(() => verifyGrant(early, roots), /not valid yet/);
});

test('a grant jose would refuse is refused: a crit header, a non-numeric iat, a key other than P-256, a non-base64url segment', async () => {
  const key = createPrivateKey(ca.keyPem);
  const roots = [new X509Certificate(ca.certPem).publicKey];
  const mallory = `spiffe://${TD}/agent/mallory`;
  const segment = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const signed = (header: object, claims: object, with_: KeyObject = key, options: object = { dsaEncoding: 'ieee-p1363' }): string => {
    const input = `${segment(header)}.${segment(claims)}`;
    return `${input}.${signBytes('sha256', Buffer.from(input), { key: with_, ...options }).toString('base64url')}`;
  };
  const head = { alg: 'ES256', typ: 'agentmesh-grant+jwt' };
  const claims = { sub: mallory, agents: ['beta'], mcp: [] };
  assert.deepEqual(verifyGrant(signed(head, claims), roots).agents, ['beta'], 'the same construction, well formed, is accepted');
  assert.throws(() => verifyGrant(signed({ ...head, crit: ['exp-ext'], 'exp-ext': 1 }, claims), roots), /crit/);
  assert.throws(() => verifyGrant(signed({ ...head, b64: false, crit: ['b64'] }, claims), roots), /crit/);
  assert.throws(() => verifyGrant(signed(head, { ...claims, iat: 'yesterday' }), roots), /iat/);
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  assert.throws(() => verifyGrant(signed(head, claims, p384.privateKey), [p384.publicKey]), /not signed by a CA/, 'ES256 is P-256 only');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  assert.throws(() => verifyGrant(signed(head, claims, rsa.privateKey, {}), [rsa.publicKey]), /not signed by a CA/, 'an RSA signature under alg ES256');
  const good = await signGrant({ caKeyPem: ca.keyPem, identity: mallory, agents: ['beta'], mcp: [] });
  for (const bad of [`${good}!!`, good.replace(/[-_]/g, (c) => (c === '-' ? '+' : '/'))]) {
    if (bad === good) continue;
    assert.throws(() => verifyGrant(bad, roots), /malformed/, bad.slice(-20));
  }
});

test('the gate refuses older and equal-but-different heartbeats, ignores raw deletes, honours tombstones', () => {
  const replays: string[] = [];
  const gate = new RecordGate(60_000, (key, reason) => replays.push(`${reason} ${key}`));
  const at = (ms: number) => ({ ...storedAgentRecord('a', 'i1'), heartbeatAt: new Date(ms).toISOString() });
  const key = 'agents.a.i1';
  const now = Date.now();
  assert.ok(gate.filter({ op: 'put', key, record: at(now), tag: 'x' }));
  assert.equal(gate.filter({ op: 'put', key, record: at(now), tag: 'x' }), undefined, 'the same value again');
  assert.equal(replays.length, 0, 'a re-delivery is no replay');
  assert.equal(gate.filter({ op: 'put', key, record: at(now), tag: 'y' }), undefined);
  assert.equal(gate.filter({ op: 'put', key, record: at(now - 1000), tag: 'z' }), undefined);
  assert.deepEqual(replays, [`replay ${key}`, `replay ${key}`]);
  assert.equal(gate.filter({ op: 'delete', key }), undefined, 'raw deletes are not applied');
  assert.deepEqual(gate.filter({ op: 'put', key, record: { ...at(now + 1), withdrawn: true }, tag: 't' }), { op: 'delete', key });
  assert.equal(gate.filter({ op: 'put', key: 'agents.b.i1', record: { ...at(now + 120_000), name: 'b' }, tag: 'f' }), undefined, 'from the future');
  assert.equal(replays.at(-1), 'invalid agents.b.i1');
});

test('an MCP server name claimed by two identities is served by neither; a grant decides it', (t) => {
  const reports: string[] = [];
  const view = new RecordView({ ttlMs: 60_000, onOwnershipConflict: (key, why) => reports.push(`${why} ${key}`) });
  t.after(() => view.close());
  const at = new Date().toISOString();
  const mcp = (instance: string, identity: string): McpRecord => ({
    kind: 'mcp', name: 'stats', instance, identity, endpoint: 'https://127.0.0.1:9', labels: {}, tools: [], startedAt: at, heartbeatAt: at,
  });
  const put = (record: McpRecord, granted = false) => view.apply({ op: 'put', key: recordKey(record), record, granted });
  put(mcp('a1', `spiffe://${TD}/agent/a`));
  put(mcp('a2', `spiffe://${TD}/agent/a`));
  assert.equal(view.mcpInstances('stats').length, 2, 'one identity, two instances: balanced');
  put(mcp('m1', `spiffe://${TD}/agent/mallory`));
  assert.deepEqual(view.mcpInstances('stats'), [], 'a conflict: none served');
  assert.deepEqual(view.mcpServers().filter((s) => s.name === 'stats'), []);
  assert.deepEqual(reports.sort(), ['mcp_name_conflict mcp.stats.a1', 'mcp_name_conflict mcp.stats.a2', 'mcp_name_conflict mcp.stats.m1']);
  view.mcpInstances('stats');
  assert.equal(reports.length, 3, 'reported once, not per read');
  put(mcp('a1', `spiffe://${TD}/agent/a`), true);
  assert.deepEqual(view.mcpInstances('stats').map((r) => r.instance).sort(), ['a1', 'a2'], 'the grant holder\'s instances only');
  assert.ok(reports.includes('name_not_owned mcp.stats.m1'));
});
