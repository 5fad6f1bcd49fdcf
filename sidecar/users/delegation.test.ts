// The delegation chain without processes: a hop token verified by the next sidecar, the token given to
// the agent verified and extended by its own sidecar, the budget shared by sibling calls, a renewed
// certificate picked up at once, and tokens from another CA or for another sidecar refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { isMeshError } from '../../sdk/errors.ts';
import { CHAIN_HEADER } from '../../sdk/mesh-headers.ts';
import { createCa, issueWorkload, type Identity } from '../identity/index.ts';
import { createLogger } from '../log.ts';
import { RequestContext } from '../request-context.ts';
import { Delegation } from './delegation.ts';
import { WorkloadSigner } from './workload-signer.ts';

const TD = 'mesh.test';

async function identities(ca: { certPem: string; keyPem: string }, name: string): Promise<Identity> {
  const id = `spiffe://${TD}/agent/${name}`;
  const pair = await issueWorkload({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, id });
  return { id, trustDomain: TD, certPem: pair.certPem, keyPem: pair.keyPem, bundlePem: ca.certPem, notAfter: new Date(Date.now() + 3_600_000) };
}

function request(headers: Record<string, string> = {}): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}

function context(direction: 'outbound' | 'inbound', caller?: string): RequestContext {
  const ctx = new RequestContext(direction, request(), createLogger('silent'));
  ctx.caller = caller;
  ctx.method = 'SendMessage';
  ctx.target = { kind: 'agent', name: 'x' };
  return ctx;
}

test('a chain crosses two hops: verified, handed to the agent, extended, and the budget is shared', async () => {
  const ca = await createCa({ trustDomain: TD });
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => identities(ca, n))) as [Identity, Identity, Identity];
  const side = (id: Identity, callBudget?: number) => new Delegation({ signer: new WorkloadSigner(() => id), users: undefined, callBudget, ttlMs: 30_000 });
  const atA = side(a, 3);
  const atB = side(b);
  const atC = side(c);

  // A's agent starts a call (no user): the budget starts the chain.
  const out = context('outbound');
  await atA.outbound(request(), out);
  assert.deepEqual(out.chain, [a.id]);
  const hop = await atA.hopHeaders(out, [b.id], "agent 'b'");
  assert.equal(hop['x-agentmesh-budget'], '2');

  // B verifies it, gives its agent a token, and the agent calls on twice with it.
  const inB = context('inbound', a.id);
  await atB.inbound(request(hop), inB, false);
  assert.deepEqual(inB.chain, [a.id]);
  const forAgent = await atB.agentHeaders(inB, 5000);
  const held = forAgent[CHAIN_HEADER] ?? '';
  const plumbing = context('outbound');
  await atB.outbound(request({ [CHAIN_HEADER]: held }), plumbing);
  assert.equal((await atB.hopHeaders(plumbing, [c.id], "MCP server 'c'", false))['x-agentmesh-budget'], '2', 'no debit for session plumbing');
  const first = context('outbound');
  await atB.outbound(request({ [CHAIN_HEADER]: held }), first);
  assert.deepEqual(first.chain, [a.id, b.id]);
  const toC = await atB.hopHeaders(first, [c.id], "agent 'c'");
  assert.equal(toC['x-agentmesh-budget'], '1');
  const second = context('outbound');
  await atB.outbound(request({ [CHAIN_HEADER]: held }), second);
  assert.equal((await atB.hopHeaders(second, [c.id], "agent 'c'"))['x-agentmesh-budget'], '0', 'siblings share the budget');
  const third = context('outbound');
  await atB.outbound(request({ [CHAIN_HEADER]: held }), third);
  await assert.rejects(atB.hopHeaders(third, [c.id], "agent 'c'"), (err) => isMeshError(err, 'CALL_BUDGET_EXHAUSTED'));

  // C accepts B's token, not when it arrives from A, and not twice for another request.
  const inC = context('inbound', b.id);
  await atC.inbound(request(toC), inC, false);
  assert.deepEqual(inC.chain, [a.id, b.id]);
  await assert.rejects(async () => atC.inbound(request(toC), context('inbound', b.id), false), (err) => isMeshError(err, 'UNAUTHENTICATED') && /already used/.test(err.message));
  // B's agent's token is not a hop token, and A's hop token was for B only.
  await assert.rejects(async () => atC.inbound(request({ [CHAIN_HEADER]: held }), context('inbound', b.id), false), (err) => isMeshError(err, 'UNAUTHENTICATED'));
  await assert.rejects(async () => atC.inbound(request(hop), context('inbound', a.id), false), (err) => isMeshError(err, 'UNAUTHENTICATED') && /aud/.test(err.message));
  // The agent's token is refused at another sidecar's outbound listener.
  await assert.rejects(atC.outbound(request({ [CHAIN_HEADER]: held }), context('outbound')), (err) => isMeshError(err, 'UNAUTHENTICATED'));
});

test('a renewed certificate signs at once; a token from another CA is refused', async () => {
  const ca = await createCa({ trustDomain: TD });
  const other = await createCa({ trustDomain: TD });
  let a = await identities(ca, 'a');
  const b = await identities(ca, 'b');
  const signer = new WorkloadSigner(() => a);
  const atB = new Delegation({ signer: new WorkloadSigner(() => b), users: undefined, callBudget: undefined, ttlMs: 30_000 });
  const token = async () => {
    const ctx = context('outbound');
    await new Delegation({ signer, users: undefined, callBudget: 5, ttlMs: 30_000 }).outbound(request(), ctx);
    return new Delegation({ signer, users: undefined, callBudget: 5, ttlMs: 30_000 }).hopHeaders(ctx, [b.id], "agent 'b'");
  };
  const before = await token();
  a = await identities(ca, 'a');
  const after = await token();
  const x5c = (headers: Record<string, string>) => JSON.parse(Buffer.from((headers[CHAIN_HEADER] ?? '').split('.')[0] ?? '', 'base64url').toString()).x5c[0] as string;
  assert.notEqual(x5c(before), x5c(after), 'the renewed certificate is in x5c');
  await atB.inbound(request(after), context('inbound', a.id), false);
  a = await identities(other, 'a');
  await assert.rejects(async () => atB.inbound(request(await token()), context('inbound', a.id), false), (err) => isMeshError(err, 'UNAUTHENTICATED') && /trust bundle/.test(err.message));
});
