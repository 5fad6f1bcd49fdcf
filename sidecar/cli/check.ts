// `agentmesh check [--config F] [--json] [--timeout 3s]`: everything a sidecar with this config needs,
// one ✔ / ⚠ / ✖ line each with a hint: the config, certificates, name binding, NATS, ports, the local
// agent's card, the policy file. Exit 1 on any ✖ (a ⚠ does not fail).
import { MeshError } from '../../sdk/errors.ts';
import { parseDuration, type SidecarConfig } from '../config.ts';
import { stringFlag, type ParsedArgs } from './args.ts';
import { configFromArgs, type CliContext } from './commands.ts';
import { checkGrants, checkIdentity, checkNameBinding } from './check-identity.ts';
import { fail, formatResult, ok, type CheckResult } from './check-result.ts';
import { checkAgentCard, checkNats, checkPolicy, checkPorts } from './check-runtime.ts';
import { policyRegistrations } from './policy.ts';

export async function runCheck(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const timeoutFlag = stringFlag(args, 'timeout') ?? '3s';
  const timeoutMs = parseDuration(timeoutFlag);
  if (timeoutMs === undefined || timeoutMs <= 0) throw new MeshError('CONFIG_INVALID', `--timeout: expected a duration like 3s, got '${timeoutFlag}'`);
  const results = await checkAll(args, ctx, timeoutMs);
  if (args.flags.get('json') === true) ctx.out(JSON.stringify({ ok: results.every((r) => r.status !== 'fail'), results }, null, 2));
  else for (const r of results) ctx.out(formatResult(r));
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}

export async function checkAll(args: ParsedArgs, ctx: CliContext, timeoutMs: number): Promise<CheckResult[]> {
  let config: SidecarConfig;
  try {
    config = await configFromArgs(args, ctx.env, ['json', 'timeout']);
  } catch (err) {
    return [fail('config', err instanceof MeshError ? err.message : String(err), 'agentmesh validate --config F names each bad key')];
  }
  const results: CheckResult[] = [ok('config', 'valid')];
  const identity = await checkIdentity(config);
  results.push(...identity.results);
  results.push(...await checkPorts(config));
  results.push(...await checkNats(config));
  const card = await checkAgentCard(config, timeoutMs);
  results.push(...card.results);
  const name = config.agent?.name ?? card.name;
  if (identity.id !== undefined && name !== undefined) {
    const grants = await checkGrants(config);
    const registered = await policyRegistrations(config, identity.id);
    results.push(...grants.results, checkNameBinding(identity.id, config.identity.trustDomain, name, config.agent?.name ? 'agent.name' : 'agent (card name)', [...grants.registrations, ...registered]));
  }
  results.push(...await checkPolicy(config));
  return results;
}
