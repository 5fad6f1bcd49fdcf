// A separate process for the registry tests: opens a registry, announces one agent record, optionally
// waits until it sees another agent, then idles until killed. Test-only; not part of the package API.
// Usage: node --import tsx test/support/registry-child.ts '<json ChildOptions>'
// Prints "announced" and then "saw <name>" on stdout; SIGTERM closes the registry (withdraws) and exits 0.
import { openRegistry, type RegistryOptions } from '../../registry/index.ts';
import type { PemPair } from '../../sidecar/identity/index.ts';
import { meshSigning } from './record-signing.ts';

export interface ChildOptions {
  registry: Pick<RegistryOptions, 'nats' | 'bucket' | 'dir' | 'ttlMs'>;
  /** Sign and verify records with certificates from this CA (trust domain mesh.test). */
  ca?: PemPair;
  name: string;
  instance: string;
  /** An agent name to wait for in this process's view. */
  expect?: string;
}

const options = JSON.parse(process.argv[2] ?? '{}') as ChildOptions;
const signing = options.ca ? meshSigning(options.ca, 'mesh.test') : undefined;
const registry = await openRegistry({ ...options.registry, ...(signing ? { signer: signing.signer, verifier: signing.verifier } : {}) });
const keepAlive = setInterval(() => undefined, 60_000); // registry timers are unref'd; this process must idle
process.once('SIGTERM', () => {
  void registry.close().finally(() => { clearInterval(keepAlive); process.exit(0); });
});
await registry.announce({
  kind: 'agent', name: options.name, instance: options.instance, identity: `spiffe://mesh.test/agent/${options.name}`,
  endpoint: 'https://127.0.0.1:1', labels: {}, card: { name: options.name, skills: [] },
});
process.stdout.write('announced\n');
const { expect } = options;
if (expect !== undefined) {
  await new Promise<void>((resolve) => {
    const check = (): void => { if (registry.agentInstances(expect).length > 0) { off(); resolve(); } };
    const off = registry.onChange(check);
    check();
  });
  process.stdout.write(`saw ${expect}\n`);
}
