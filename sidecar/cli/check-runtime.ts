// `agentmesh check`, what the sidecar will meet at start-up: its ports free, NATS reachable and
// authorising it with the bucket there (unauthenticated NATS warned), the local agent's card loading,
// the policy file parsing.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { natsAccessWarning, probeNats } from '../../registry/index.ts';
import type { SidecarConfig } from '../config.ts';
import { loadIdentity } from '../identity/index.ts';
import { loadLocalAgent } from '../a2a/local-agent.ts';
import { natsAccess } from '../nats/access.ts';
import { parsePolicy } from '../policy/policy-schema.ts';
import { fail, ok, warn, type CheckResult } from './check-result.ts';

export async function checkPorts(config: SidecarConfig): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const key of ['outbound', 'inbound', 'admin'] as const) {
    const address = config.listen[key];
    if ('path' in address) {
      results.push(ok(`listen.${key}`, `unix socket ${address.path}`));
      continue;
    }
    if (address.port === 0) {
      results.push(ok(`listen.${key}`, `${address.host}:0 (a free port is picked)`));
      continue;
    }
    const where = `${address.host}:${address.port}`;
    const error = await tryBind(address.host, address.port);
    if (error === undefined) results.push(ok(`listen.${key}`, `${where} is free`));
    else if (error === 'EADDRINUSE') results.push(fail(`listen.${key}`, `${where} is already in use`, `stop what listens there (another sidecar?) or set listen.${key} to a free port`));
    else results.push(fail(`listen.${key}`, `cannot listen on ${where} (${error})`, `set listen.${key} to an address of this host`));
  }
  return results;
}

export async function checkNats(config: SidecarConfig): Promise<CheckResult[]> {
  const servers = config.registry.nats;
  if (servers === undefined) return [ok('registry', `embedded (files in ${config.registry.dir ?? 'the default directory'}; no NATS)`)];
  const access = natsAccess(config, () => { throw new Error('not loaded'); });
  const results: CheckResult[] = [];
  const warning = natsAccessWarning(servers, access);
  if (warning) results.push(warn('registry.nats', warning, 'set registry.credentials or registry.tls (agentmesh nats config prints a server config with per-identity permissions)'));
  let probeAccess = access;
  if (config.registry.tls) {
    // TLS needs the identity loaded; a failure there is already a certificate line.
    const { cert, key } = config.identity;
    if (cert === undefined || key === undefined) return [...results, warn('registry.tls', 'not probed: the identity is issued by the online CA at start-up')];
    try {
      const identity = await loadIdentity({ ...config.identity, cert, key });
      probeAccess = natsAccess(config, () => identity);
    } catch {
      return [...results, fail('registry.tls', 'cannot connect with TLS: the identity does not load (see identity.* above)')];
    }
  }
  const where = [servers].flat().join(', ');
  const probe = await probeNats({ servers, access: probeAccess, bucket: config.registry.bucket });
  if (!probe.reachable) {
    results.push(fail('registry.nats', `cannot reach NATS at ${where}: ${probe.error ?? 'no answer'}`, 'start nats-server with JetStream (-js), or fix registry.nats'));
    return results;
  }
  if (!probe.authorised) {
    results.push(fail('registry.credentials', `NATS at ${where} refused this sidecar: ${probe.error ?? 'not authorised'}`, 'check registry.credentials / registry.tls against the server\'s accounts'));
    return results;
  }
  results.push(ok('registry.nats', `connected to ${where}`));
  const bucket = probe.bucket;
  if (bucket?.state === 'ok') results.push(ok('registry.bucket', `'${config.registry.bucket}' holds ${bucket.values} values`));
  else if (bucket?.state === 'missing') results.push(warn('registry.bucket', `no bucket '${config.registry.bucket}' yet`, 'the first sidecar creates it, unless it may not create streams: then run agentmesh nats init --config F'));
  else results.push(fail('registry.bucket', `cannot read bucket '${config.registry.bucket}': ${bucket?.error ?? 'unknown'}`, 'check the identity\'s permissions on $KV.<bucket>.> and $JS.API'));
  return results;
}

export async function checkAgentCard(config: SidecarConfig, timeoutMs: number): Promise<{ results: CheckResult[]; name: string | undefined }> {
  if (!config.agent) return { results: [ok('agent', 'none (this sidecar fronts no agent)')], name: undefined };
  try {
    const agent = await loadLocalAgent({
      url: config.agent.url, timeoutMs, signal: AbortSignal.timeout(timeoutMs + 1000),
      ...(config.agent.name ? { name: config.agent.name } : {}),
    });
    await agent.close();
    return { results: [ok('agent.url', `the card of '${agent.card.name}' loads from ${config.agent.url}`)], name: agent.name };
  } catch (err) {
    return {
      results: [fail('agent.url', `the agent card does not load: ${(err as Error).message}`, `start the agent first, or fix agent.url (the card is read from ${config.agent.url.replace(/\/$/, '')}/.well-known/agent-card.json)`)],
      name: config.agent.name,
    };
  }
}

function tryBind(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** policy.file, when the config names one: readable and a valid policy document (as the sidecar parses it). */
export async function checkPolicy(config: SidecarConfig): Promise<CheckResult[]> {
  const path = config.policy.file;
  if (path === undefined) return [ok('policy', 'from the registry\'s policy store (agentmesh policy apply)')];
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return [fail('policy.file', `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 'fix policy.file, or leave it out to use the policy store')];
  }
  try {
    const document = parsePolicy(text, path);
    return [ok('policy.file', `${path}: ${document.mode}, default ${document.default}, ${document.rules.length} rules`)];
  } catch (err) {
    return [fail('policy.file', (err as Error).message, 'agentmesh explain --policy FILE shows how a call is decided once it parses')];
  }
}
