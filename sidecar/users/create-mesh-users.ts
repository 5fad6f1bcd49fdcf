// Builds the sidecar's MeshUsers from its config: the JWT verifier (auth.jwt), the workload signer, the
// call budget, rate limits (config rateLimits until the policy document's `limits` is wired) and push.allow.
import type { SidecarConfig } from '../config.ts';
import type { Identity } from '../identity/index.ts';
import { MeshUsers } from './mesh-users.ts';
import { configLimits } from './rate-limiter.ts';
import { createUserVerifier } from './user-token.ts';
import { WorkloadSigner } from './workload-signer.ts';

export async function createMeshUsers(config: SidecarConfig, identity: () => Identity): Promise<MeshUsers> {
  const jwt = config.auth.jwt;
  const push = { allow: config.push.allow };
  return new MeshUsers({
    signer: new WorkloadSigner(identity),
    users: jwt ? await createUserVerifier(jwt) : undefined,
    callBudget: config.delegation.callBudget,
    ttlMs: config.delegation.ttl,
    limitsFor: configLimits(config.rateLimits),
    push: () => push,
  });
}
