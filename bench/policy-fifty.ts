// A 50-rule mesh policy for the benchmark (every feature set of `npm run bench` but none): 49 rules about other identities
// and targets, and the one that lets the bench caller reach the echo agent and the bench MCP server last,
// so each uncached decision walks them all. Also `node --import tsx bench/policy-fifty.ts`: ns per decision.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CompiledPolicy } from '../sidecar/policy/policy-engine.ts';
import { parsePolicy } from '../sidecar/policy/policy-schema.ts';

export function fiftyRulePolicy(trustDomain: string): string {
  const rules: Record<string, unknown>[] = [];
  for (let i = 0; i < 48; i++) {
    rules.push(i % 2 === 0
      ? { name: `team-${i}`, from: { identity: `spiffe://${trustDomain}/agent/team-${i}-*` }, to: { agent: `svc-${i}`, methods: ['SendMessage', 'GetTask'] } }
      : { name: `tools-${i}`, from: { identity: `spiffe://${trustDomain}/agent/team-${i}` }, to: { mcp: `mcp-${i}`, tools: ['read_*'] } });
  }
  // Globs: each feature set's pair has its own names (caller-notrace → echo-notrace, bench-notrace).
  rules.push({ name: 'bench-mcp', from: { identity: `spiffe://${trustDomain}/agent/caller*` }, to: { mcp: 'bench*' } });
  // Every agent, for every bench workload: the registry-scale part lists the simulated sim-* agents through
  // both sidecars (each as its own workload), and the registry shows a caller only the agents it may call.
  rules.push({ name: 'bench-agents', from: { identity: `spiffe://${trustDomain}/agent/*` }, to: { agent: '*' } });
  return stringify({ mode: 'enforce', default: 'deny', rules });
}

/** Writes the policy into `dir` and returns its path (for policy.file). */
export function writeFiftyRulePolicy(dir: string, trustDomain: string): string {
  const path = join(dir, 'policy-50.yaml');
  writeFileSync(path, fiftyRulePolicy(trustDomain));
  return path;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const policy = new CompiledPolicy(parsePolicy(fiftyRulePolicy('bench.test'), '50 rules'), 1);
  const call = { caller: 'spiffe://bench.test/agent/caller', target: { kind: 'agent' as const, name: 'echo' }, method: 'SendMessage', tool: undefined };
  const n = 1_000_000;
  for (let i = 0; i < 10_000; i++) policy.decide(call);
  const started = process.cpuUsage();
  for (let i = 0; i < n; i++) policy.decide({ ...call });
  const used = process.cpuUsage(started);
  const cold = process.hrtime.bigint();
  for (let i = 0; i < 1000; i++) new CompiledPolicy(policy.document, 2).decide(call);
  const coldNs = Number(process.hrtime.bigint() - cold) / 1000;
  console.log(`50 rules: ${(((used.user + used.system) * 1000) / n).toFixed(0)} ns CPU per cached decision; ${(coldNs / 1000).toFixed(1)} µs to compile the policy and make its first decision (once per version)`);
}
