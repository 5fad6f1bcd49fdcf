// Builds the sidecar's MeshUsers from its config: the JWT verifier (auth.jwt), the workload signer, the
// call budget, rate limits (config rateLimits until the policy document's `limits` is wired) and push.allow.
import type { SidecarConfig } from '../config.ts';
import type { Identity } from '../identity/index.ts';
import { MeshUsers } from './mesh-users.ts';
import { configLimits, type LimitsFor } from './rate-limiter.ts';
import { createUserVerifier } from './user-token.ts';
import { WorkloadSigner } from './workload-signer.ts';

/**
 * `from`: where limits and push.allow come from instead of the config — the policy document once it is
 * wired: `{ limitsFor: (c, t, u) => gate.policy?.limitsFor(c, t, u) ... , pushAllow: () => gate.policy?.document.push.allow }`.
 */
export async function createMeshUsers(config: SidecarConfig, identity: () => Identity, from: { limitsFor?: LimitsFor; pushAllow?: () => readonly string[] | undefined } = {}): Promise<MeshUsers> {
  const jwt = config.auth.jwt;
  const configured = { allow: config.push.allow };
  const pushAllow = from.pushAllow;
  return new MeshUsers({
    signer: new WorkloadSigner(identity),
    users: jwt ? await createUserVerifier(jwt) : undefined,
    callBudget: config.delegation.callBudget,
    ttlMs: config.delegation.ttl,
    limitsFor: from.limitsFor ?? configLimits(config.rateLimits),
    push: pushAllow ? () => ({ allow: pushAllow() ?? configured.allow }) : () => configured,
  });
}
