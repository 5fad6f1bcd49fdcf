// `agentmesh check`, certificates: the identity files are readable, the key matches, the chain reaches
// identity.bundle, the certificate is valid now (and not about to expire), its SPIFFE ID is in
// identity.trustDomain, and the agent name is one the identity owns (spiffe://TD/agent/NAME or a grant).
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { SidecarConfig } from '../config.ts';
import { nameOwnership, type Registrations } from '../../registry/index.ts';
import { loadGrants, loadIdentity, parseSpiffeId } from '../identity/index.ts';
import { fail, ok, warn, type CheckResult } from './check-result.ts';

const SOON_MS = 24 * 3_600_000;
const ISSUE_HINT = 'issue one: agentmesh ca issue --dir CA_DIR --id spiffe://TD/agent/NAME --out DIR';

/** The identity's SPIFFE ID when the certificate could be read, and the lines found. */
export async function checkIdentity(config: SidecarConfig, now = Date.now()): Promise<{ results: CheckResult[]; id: string | undefined }> {
  const results: CheckResult[] = [];
  const { cert, key, ca } = config.identity;
  if (cert === undefined || key === undefined) {
    return { results: [ok('identity', `issued at start-up by the online CA at ${ca ?? '-'} (join token)`)], id: undefined };
  }
  const files = { 'identity.cert': cert, 'identity.key': key, 'identity.bundle': config.identity.bundle };
  const texts: Partial<Record<keyof typeof files, string>> = {};
  for (const [name, path] of Object.entries(files) as [keyof typeof files, string][]) {
    try {
      texts[name] = await readFile(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      if (ca !== undefined && code === 'ENOENT' && name !== 'identity.bundle') results.push(warn(name, `${path} does not exist yet: the online CA at ${ca} issues it at start-up`));
      else results.push(fail(name, `cannot read ${path} (${code})`, name === 'identity.bundle' ? 'the mesh CA\'s bundle.pem from agentmesh ca init' : ISSUE_HINT));
    }
  }
  const certText = texts['identity.cert'];
  if (certText === undefined) return { results, id: undefined };
  const certPath = cert;
  let chain: X509Certificate[];
  try {
    chain = pemBlocks(certText).map((pem) => new X509Certificate(pem));
  } catch (err) {
    results.push(fail('identity.cert', `${certPath} is not a PEM certificate (${(err as Error).message})`, ISSUE_HINT));
    return { results, id: undefined };
  }
  const leaf = chain[0];
  if (!leaf) {
    results.push(fail('identity.cert', `${certPath} holds no certificate`, ISSUE_HINT));
    return { results, id: undefined };
  }
  results.push(...validity(leaf, now));
  const keyText = texts['identity.key'];
  if (keyText !== undefined) {
    try {
      results.push(leaf.checkPrivateKey(createPrivateKey(keyText)) ? ok('identity.key', 'matches the certificate')
        : fail('identity.key', `${key} is not the key of ${certPath}`, 'use the key issued with the certificate'));
    } catch (err) {
      results.push(fail('identity.key', `${key} is not a PEM private key (${(err as Error).message})`, ISSUE_HINT));
    }
  }
  const bundleText = texts['identity.bundle'];
  if (bundleText !== undefined) results.push(chainCheck(leaf, chain.slice(1), bundleText, config.identity.bundle));
  const uri = (leaf.subjectAltName ?? '').split(/,\s*/).find((s) => s.startsWith('URI:'))?.slice(4);
  if (!uri) {
    results.push(fail('identity.cert', 'has no SPIFFE ID (URI SAN)', ISSUE_HINT));
    return { results, id: undefined };
  }
  let trustDomain: string;
  try {
    trustDomain = parseSpiffeId(uri).trustDomain;
  } catch (err) {
    results.push(fail('identity.cert', (err as Error).message, ISSUE_HINT));
    return { results, id: undefined };
  }
  if (trustDomain !== config.identity.trustDomain) {
    results.push(fail('identity.trustDomain', `the certificate's SPIFFE ID ${uri} is in trust domain '${trustDomain}', not '${config.identity.trustDomain}'`,
      `set identity.trustDomain to ${trustDomain}, or issue a certificate from the ${config.identity.trustDomain} CA`));
  } else {
    results.push(ok('identity.trustDomain', `${uri} is in ${trustDomain}`));
  }
  return { results, id: uri };
}

/** Name binding (registry nameOwnership): spiffe://TD/agent/NAME owns NAME, and so does an identity granted it (identity.grants, the policy's registrations). */
export function checkNameBinding(id: string, trustDomain: string, name: string, key: string, granted: readonly Registrations[] = []): CheckResult {
  const owned = `spiffe://${trustDomain}/agent/${name}`;
  const ownership = nameOwnership('agent', name, id, trustDomain, granted);
  return ownership !== 'none' ? ok(key, `'${name}' is ${ownership === 'granted' ? 'granted to' : 'owned by'} ${id}`)
    : fail(key, `the identity ${id} does not own the agent name '${name}' (that takes ${owned}, or a grant)`, `issue a certificate for ${owned}, grant the name (agentmesh ca grant and identity.grants, or the policy's registrations), or use the name the identity owns`);
}

/** The names identity.grants give this identity; a grant that does not load is a ✖ line. */
export async function checkGrants(config: SidecarConfig): Promise<{ results: CheckResult[]; registrations: Registrations[] }> {
  const { cert, key, grants } = config.identity;
  if (grants.length === 0 || cert === undefined || key === undefined) return { results: [], registrations: [] };
  try {
    const identity = await loadIdentity({ ...config.identity, cert, key });
    const loaded = await loadGrants(grants, identity);
    return { results: [ok('identity.grants', `${grants.length} grant${grants.length === 1 ? '' : 's'} verified`)], registrations: loaded.registrations };
  } catch (err) {
    return { results: [fail('identity.grants', (err as Error).message, 'agentmesh ca grant writes a grant signed by the mesh CA for this identity')], registrations: [] };
  }
}

function validity(leaf: X509Certificate, now: number): CheckResult[] {
  const from = Date.parse(leaf.validFrom);
  const to = Date.parse(leaf.validTo);
  if (to <= now) return [fail('identity.cert', `expired ${new Date(to).toISOString()}`, `${ISSUE_HINT} (or let the sidecar's rotation renew it)`)];
  if (from > now) return [fail('identity.cert', `not valid before ${new Date(from).toISOString()} (check the clock)`, 'check this host\'s clock, or issue a certificate valid now')];
  const left = to - now;
  const inText = left > 2 * 86_400_000 ? `${Math.floor(left / 86_400_000)}d` : `${Math.floor(left / 3_600_000)}h${Math.floor((left % 3_600_000) / 60_000)}m`;
  if (left < SOON_MS) return [warn('identity.cert', `expires in ${inText} (${new Date(to).toISOString()})`, ISSUE_HINT)];
  return [ok('identity.cert', `valid until ${new Date(to).toISOString()} (${inText} left)`)];
}

function chainCheck(leaf: X509Certificate, intermediates: X509Certificate[], bundleText: string, bundlePath: string): CheckResult {
  let roots: X509Certificate[];
  try {
    roots = pemBlocks(bundleText).map((pem) => new X509Certificate(pem));
  } catch (err) {
    return fail('identity.bundle', `${bundlePath} is not a PEM bundle (${(err as Error).message})`);
  }
  if (roots.length === 0) return fail('identity.bundle', `${bundlePath} holds no certificate`);
  const issuers = [...intermediates, ...roots];
  let current = leaf;
  for (let depth = 0; depth < 8; depth++) {
    const issuer = issuers.find((c) => current.checkIssued(c) && current.verify(c.publicKey));
    if (!issuer) return fail('identity.bundle', `the certificate does not chain to a CA in ${bundlePath} (${current.issuer.replaceAll('\n', ', ')})`, 'use the bundle of the CA that issued the certificate');
    if (roots.includes(issuer)) return ok('identity.bundle', 'the certificate chains to the bundle');
    current = issuer;
  }
  return fail('identity.bundle', 'the chain is longer than 8 certificates');
}

function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
