// Builds the sidecar's MeshUsers from its config: the JWT verifier (auth.jwt), the workload signer, the
// call budget, rate limits (config rateLimits and the policy's `limits`), concurrency limits (the policy's)
// and push.allow.
import type { SidecarConfig } from '../config.ts';
import type { Identity } from '../identity/index.ts';
import { MeshUsers } from './mesh-users.ts';
import { configLimits, type LimitsFor } from './rate-limiter.ts';
import type { ConcurrencyFor } from './concurrency-limiter.ts';
import { createUserVerifier } from './user-token.ts';
import { WorkloadSigner } from './workload-signer.ts';

/** `from`: where limits and push.allow come from besides the config (the policy in force: policy/policy-limits.ts). */
export async function createMeshUsers(config: SidecarConfig, identity: () => Identity, from: { limitsFor?: LimitsFor; concurrencyFor?: ConcurrencyFor; pushAllow?: () => readonly string[] | undefined } = {}): Promise<MeshUsers> {
  const jwt = config.auth.jwt;
  const configured = { allow: config.push.allow };
  const pushAllow = from.pushAllow;
  return new MeshUsers({
    signer: new WorkloadSigner(identity),
    users: jwt ? await createUserVerifier(jwt) : undefined,
    callBudget: config.delegation.callBudget,
    ttlMs: config.delegation.ttl,
    limitsFor: from.limitsFor ?? configLimits(config.rateLimits),
    ...(from.concurrencyFor ? { concurrencyFor: from.concurrencyFor } : {}),
    push: pushAllow ? () => ({ allow: pushAllow() ?? configured.allow }) : () => configured,
  });
}
