// The request path's one entry to end users, delegation, rate and concurrency limits and push-target rules: a few calls
// from the A2A and MCP handlers on each side. Built once at start-up from config (and later the policy).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseJsonBody } from '../http/http-util.ts';
import type { RequestContext } from '../request-context.ts';
import { Delegation, type DelegationOptions } from './delegation.ts';
import { checkPushUrls, pushUrls, type PushRules } from './push-targets.ts';
import { RateLimiter, type LimitsFor } from './rate-limiter.ts';
import { ConcurrencyLimiter, type ConcurrencyFor } from './concurrency-limiter.ts';

const PUSH_METHODS = new Set(['SendMessage', 'SendStreamingMessage', 'CreateTaskPushNotificationConfig']);
const MCP_PLUMBING = new Set(['initialize', 'ping', 'MCP GET', 'MCP DELETE']);

export interface MeshUsersOptions extends DelegationOptions {
  limitsFor: LimitsFor;
  /** The policy's `limits` with a concurrency (none without a policy). */
  concurrencyFor?: ConcurrencyFor;
  /** push.allow, read at each use (so a new policy applies at once). */
  push: () => PushRules;
}

export class MeshUsers {
  readonly #delegation: Delegation;
  readonly #limiter: RateLimiter;
  readonly #concurrency: ConcurrencyLimiter;
  readonly #push: () => PushRules;

  constructor(options: MeshUsersOptions) {
    this.#delegation = new Delegation(options);
    this.#limiter = new RateLimiter(options.limitsFor);
    this.#concurrency = new ConcurrencyLimiter(options.concurrencyFor ?? (() => []));
    this.#push = options.push;
  }

  /**
   * Calling side, once the method is known: who the agent acts for (ctx.user, ctx.chain) and, for A2A
   * methods that carry push configs, their URLs checked. `params`: the JSON-RPC params when already read;
   * otherwise a REST body is read here (only for those methods). Undefined (no promise, nothing to await)
   * when the call carries no token and no budget applies: the push URLs are then checked before it returns.
   */
  outbound(req: IncomingMessage, ctx: RequestContext, a2a?: { params?: unknown; body?: Buffer | undefined; rest?: boolean }): Promise<void> | undefined {
    if (this.#delegation.inert(req)) {
      this.#checkPush(ctx, a2a);
      return undefined;
    }
    return this.#delegation.outbound(req, ctx).then(() => this.#checkPush(ctx, a2a));
  }

  #checkPush(ctx: RequestContext, a2a: { params?: unknown; body?: Buffer | undefined; rest?: boolean } | undefined): void {
    if (!a2a || !PUSH_METHODS.has(ctx.method)) return;
    // A REST SendMessage body is parsed only when it could name a push config: "push" needs "ush" or a \u escape.
    const mayHold = ctx.method === 'CreateTaskPushNotificationConfig' || a2a.body?.includes('ush') === true || a2a.body?.includes('\\u') === true;
    if (a2a.rest && !mayHold) return;
    const params = a2a.rest ? parseJsonBody(a2a.body) : a2a.params;
    const urls = pushUrls(ctx.method, params);
    // The rules are read (which may build an object) only when there is a URL to check.
    if (urls.length > 0) checkPushUrls(urls, this.#push());
  }

  /** Calling side, per forwarded call: the budget debited and the hop's signed chain headers. */
  hopHeaders(ctx: RequestContext, instances: readonly { identity: string }[], target: string): Promise<Record<string, string>> {
    if (!ctx.delegation) return NONE;
    // MCP session plumbing (opening, listening, closing, pings) carries the chain but costs no budget.
    const debit = ctx.target?.kind !== 'mcp' || !(MCP_PLUMBING.has(ctx.method) || ctx.method.startsWith('notifications/'));
    return this.#delegation.hopHeaders(ctx, [...new Set(instances.map((i) => i.identity))], target, debit);
  }

  /**
   * Receiving side: the chain verified into ctx, then (when `limited`) a slot of the caller's concurrency
   * to this target, held until `res` closes, and a token of its rate taken. Undefined (no promise, nothing
   * to await) when the call carries no chain: the limits are then applied, or refused, before it returns.
   */
  inbound(req: IncomingMessage, ctx: RequestContext, repeatable: boolean, limited = true, res?: ServerResponse): Promise<void> | undefined {
    const verifying = this.#delegation.inbound(req, ctx, repeatable);
    if (verifying) return verifying.then(() => this.#limit(ctx, limited, res));
    this.#limit(ctx, limited, res);
    return undefined;
  }

  #limit(ctx: RequestContext, limited: boolean, res: ServerResponse | undefined): void {
    if (!limited || !ctx.target || !ctx.caller) return;
    const release = res ? this.#concurrency.acquire(ctx.caller, ctx.target, ctx.user) : undefined;
    try {
      this.#limiter.take(ctx.caller, ctx.target, ctx.user);
    } catch (err) {
      release?.();
      throw err;
    }
    if (!release || !res) return;
    if (res.destroyed || res.writableFinished) release();
    else res.once('close', release);
  }

  /** Calls in flight under the policy's concurrency limits. */
  inFlight(): number {
    return this.#concurrency.inFlight();
  }

  /** Receiving side: the user and chain headers for the local agent (or MCP server); undefined when there are none. */
  agentHeaders(ctx: RequestContext, deadlineMs: number | undefined): Promise<Record<string, string>> | undefined {
    if (!ctx.delegation) return undefined;
    return this.#delegation.agentHeaders(ctx, deadlineMs);
  }

  close(): void {
    this.#delegation.close();
  }
}

const NONE: Promise<Record<string, string>> = Promise.resolve({});
