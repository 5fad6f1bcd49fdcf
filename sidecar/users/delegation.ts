// The delegation chain on both sides of a hop. Calling side: who the local agent acts for (a bearer JWT,
// or the chain token its sidecar gave it), the call budget debited per call, a token signed for the hop.
// Receiving side: the hop token verified against the mTLS caller, and a token for the local agent.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { JWTPayload } from 'jose';
import { MeshError } from '../../sdk/errors.ts';
import { BUDGET_HEADER, CHAIN_HEADER, USER_HEADER } from '../../sdk/mesh-headers.ts';
import type { RequestContext } from '../request-context.ts';
import { actClaim, chainOf, userClaims, userHeaderValue, type MeshUser } from './delegation-claims.ts';
import { JtiCache } from './jti-cache.ts';
import type { UserVerifier } from './user-token.ts';
import type { WorkloadSigner } from './workload-signer.ts';

const HOP_TYP = 'agentmesh-delegation+jwt';
const LOCAL_TYP = 'agentmesh-chain+jwt';
/** The token an agent holds lives as long as the call's deadline, within these bounds (s). */
const LOCAL_DEFAULT_TTL_S = 600;
const LOCAL_MAX_TTL_S = 3600;
const MAX_HOP_TTL_S = 300;
const MAX_BUDGETS = 10_000;

export interface DelegationOptions {
  signer: WorkloadSigner;
  /** auth.jwt; undefined: Authorization headers are not read (and still never forwarded). */
  users: UserVerifier | undefined;
  /** delegation.callBudget */
  callBudget: number | undefined;
  /** delegation.ttl (ms) */
  ttlMs: number;
}

export class Delegation {
  readonly #o: DelegationOptions;
  readonly #jtis = new JtiCache();
  /** What is left of the budget of each chain token the local agent has handed back, by token id. */
  readonly #budgets = new Map<string, { remaining: number; exp: number }>();

  constructor(options: DelegationOptions) {
    this.#o = options;
  }

  /**
   * Calling side: true when outbound() would leave ctx as it is (no chain token, no bearer token read, no
   * call budget), so a caller may skip it and its promise. Read without throwing: a repeated header is not
   * inert, and outbound() refuses it.
   */
  inert(req: IncomingMessage): boolean {
    const held = req.headers[CHAIN_HEADER];
    const authorization = this.#o.users ? req.headers.authorization : undefined;
    return (held === undefined || held === '') && (authorization === undefined || authorization === '') && this.#o.callBudget === undefined;
  }

  /** Calling side: sets ctx.user, ctx.chain (ending with this sidecar) and ctx.delegation, or leaves them unset. */
  async outbound(req: IncomingMessage, ctx: RequestContext): Promise<void> {
    const self = this.#o.signer.id;
    const held = single(req.headers[CHAIN_HEADER], CHAIN_HEADER);
    const authorization = this.#o.users ? single(req.headers.authorization, 'authorization') : undefined;
    if (held === undefined && authorization === undefined && this.#o.callBudget === undefined) return;
    if (held !== undefined && authorization !== undefined) {
      throw new MeshError('UNAUTHENTICATED', `send either a bearer token (a new user) or ${CHAIN_HEADER} (the call being served), not both`);
    }
    let user: MeshUser | undefined;
    let prior: string[] = [];
    let budget = this.#o.callBudget;
    let parent: string | undefined;
    let parentExp: number | undefined;
    if (held !== undefined) {
      const { payload, signer } = await this.#o.signer.verify(held, { typ: LOCAL_TYP, audience: self, maxTtlS: LOCAL_MAX_TTL_S });
      if (signer !== self) throw new MeshError('UNAUTHENTICATED', `${CHAIN_HEADER} was signed by ${signer}, not by this sidecar`);
      prior = chainOf(payload.act, this.#o.signer.trustDomain);
      user = userOf(payload);
      budget = budgetOf(payload);
      parent = payload.jti;
      parentExp = payload.exp;
    } else if (authorization !== undefined && this.#o.users) {
      user = await this.#o.users.verify(authorization);
    }
    ctx.user = user;
    ctx.chain = [...prior, self];
    ctx.delegation = { budget, parent, parentExp };
  }

  /** Calling side, once per forwarded call: debits the budget (unless `debit` is false) and signs the token for this hop. */
  async hopHeaders(ctx: RequestContext, audience: readonly string[], target: string, debit = true): Promise<Record<string, string>> {
    const delegated = ctx.delegation;
    if (!delegated || !ctx.chain) return {};
    let remaining = delegated.budget;
    if (remaining !== undefined && !debit) {
      remaining = (delegated.parent === undefined ? undefined : this.#budgets.get(delegated.parent)?.remaining) ?? remaining;
    } else if (remaining !== undefined) {
      const entry = delegated.parent === undefined ? undefined : this.#budgets.get(delegated.parent);
      if (entry) remaining = entry.remaining;
      if (remaining < 1) {
        throw new MeshError('CALL_BUDGET_EXHAUSTED', `call to ${target} refused: the originating request has spent its call budget (delegation.callBudget${this.#o.callBudget === undefined ? '' : ` = ${this.#o.callBudget}`}); is there a call loop?`, { details: { budget: 0, chain: ctx.chain.length } });
      }
      remaining -= 1;
      if (delegated.parent !== undefined) this.#remember(delegated.parent, remaining, delegated.parentExp ?? 0);
    }
    const ttlS = Math.ceil(this.#o.ttlMs / 1000);
    const token = await this.#o.signer.sign(claims(ctx.chain, ctx.user, remaining, audience.length === 1 ? audience[0] : [...audience]), HOP_TYP, ttlS);
    return { [CHAIN_HEADER]: token, ...(remaining === undefined ? {} : { [BUDGET_HEADER]: String(remaining) }) };
  }

  /**
   * Receiving side: verifies the hop token (signed by the mTLS caller for this sidecar, chain ending with
   * the caller, not replayed) into ctx. `repeatable`: the call may legitimately arrive twice (a retry).
   */
  inbound(req: IncomingMessage, ctx: RequestContext, repeatable: boolean): Promise<void> | undefined {
    // Without the header (no chain: most calls) there is nothing to wait for, so no promise is made.
    return req.headers[CHAIN_HEADER] === undefined ? undefined : this.#verifyInbound(req, ctx, repeatable);
  }

  async #verifyInbound(req: IncomingMessage, ctx: RequestContext, repeatable: boolean): Promise<void> {
    const token = single(req.headers[CHAIN_HEADER], CHAIN_HEADER);
    if (token === undefined) return;
    const caller = ctx.caller ?? '';
    const { payload, signer } = await this.#o.signer.verify(token, { typ: HOP_TYP, audience: this.#o.signer.id, maxTtlS: MAX_HOP_TTL_S });
    if (signer !== caller) throw new MeshError('UNAUTHENTICATED', `delegation chain refused: signed by ${signer}, but the call comes from ${caller}`);
    const chain = chainOf(payload.act, this.#o.signer.trustDomain);
    if (chain[chain.length - 1] !== caller) throw new MeshError('UNAUTHENTICATED', 'delegation chain refused: it does not end with the caller');
    const seen = this.#jtis.record(String(payload.jti), payload.exp ?? 0, `${ctx.method}|${ctx.messageId ?? ''}|${ctx.taskId ?? ''}`);
    if (seen === 'replayed' || (seen === 'same' && !repeatable)) throw new MeshError('UNAUTHENTICATED', 'delegation chain refused: this token was already used (replayed)');
    ctx.user = userOf(payload);
    ctx.chain = chain;
    ctx.delegation = { budget: budgetOf(payload), parent: undefined, parentExp: undefined };
  }

  /** Receiving side: x-agentmesh-user / -chain / -budget for the local agent (none without a chain). */
  async agentHeaders(ctx: RequestContext, deadlineMs: number | undefined): Promise<Record<string, string>> {
    const delegated = ctx.delegation;
    if (!delegated || !ctx.chain) return {};
    const ttlS = deadlineMs === undefined ? LOCAL_DEFAULT_TTL_S : Math.min(LOCAL_MAX_TTL_S, Math.max(1, Math.ceil(deadlineMs / 1000) + 5));
    const token = await this.#o.signer.sign(claims(ctx.chain, ctx.user, delegated.budget, this.#o.signer.id), LOCAL_TYP, ttlS);
    return {
      [CHAIN_HEADER]: token,
      ...(ctx.user ? { [USER_HEADER]: userHeaderValue(ctx.user) } : {}),
      ...(delegated.budget === undefined ? {} : { [BUDGET_HEADER]: String(delegated.budget) }),
    };
  }

  close(): void {
    this.#o.users?.close();
  }

  #remember(id: string, remaining: number, exp: number): void {
    if (!this.#budgets.has(id) && this.#budgets.size >= MAX_BUDGETS) {
      const now = Date.now() / 1000;
      for (const [key, entry] of this.#budgets) if (entry.exp < now) this.#budgets.delete(key);
      // Still full: forget the oldest; a forgotten token falls back to the budget it carries (never more).
      if (this.#budgets.size >= MAX_BUDGETS) this.#budgets.delete(this.#budgets.keys().next().value ?? '');
    }
    this.#budgets.set(id, { remaining, exp });
  }
}

function claims(chain: readonly string[], user: MeshUser | undefined, budget: number | undefined, aud: string | string[] | undefined): JWTPayload {
  return {
    jti: randomUUID(), ...(aud === undefined ? {} : { aud }), act: actClaim(chain),
    ...(user ? { sub: user.subject, claims: user.claims } : {}),
    ...(budget === undefined ? {} : { budget }),
  };
}

function userOf(payload: JWTPayload): MeshUser | undefined {
  if (payload.sub === undefined) return undefined;
  if (payload.sub.length === 0 || payload.sub.length > 256) throw new MeshError('UNAUTHENTICATED', 'delegation chain refused: the user subject must be 1-256 characters');
  return { subject: payload.sub, claims: userClaims(payload.claims) };
}

function budgetOf(payload: JWTPayload): number | undefined {
  const budget = payload.budget;
  if (budget === undefined) return undefined;
  if (typeof budget !== 'number' || !Number.isInteger(budget) || budget < 0 || budget > 1_000_000) {
    throw new MeshError('UNAUTHENTICATED', 'delegation chain refused: budget must be an integer from 0 to 1000000');
  }
  return budget;
}

/** A header that may appear once; undefined when absent or empty. */
function single(value: string | string[] | undefined, name: string): string | undefined {
  if (Array.isArray(value)) throw new MeshError('UNAUTHENTICATED', `header ${name} may appear only once`);
  return value === undefined || value === '' ? undefined : value;
}
