// The policy's `registrations` feed the registry's name binding: the verifier reads them per record
// (PolicyGate.registrationsFor), and when a new policy version changes them the records already held are
// checked again (Registry.rebind): a name granted now is admitted, a name no longer granted is dropped.
import type { Registry } from '../../registry/index.ts';
import type { PolicyGate } from './policy-gate.ts';

/** Rebinds `registry` whenever the policy in force changes its registrations; returns the unsubscribe. */
export function followRegistrations(gate: PolicyGate, registry: Pick<Registry, 'rebind'>): () => void {
  const current = () => JSON.stringify(gate.policy?.document.registrations ?? []);
  let bound = current();
  return gate.onChange(() => {
    const next = current();
    if (next === bound) return;
    bound = next;
    void registry.rebind();
  });
}
