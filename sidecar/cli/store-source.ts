// Where the audit and tool-pin commands find the mesh's stores: --nats URL (and --bucket), --config FILE
// (registry.nats and its credentials/TLS, audit.dir, registry.dir), or files (--file / --dir) without NATS.
import { MeshError } from '../../sdk/errors.ts';
import type { NatsAccess } from '../../registry/index.ts';
import { readConfigFile, resolveConfig, type SidecarConfig } from '../config.ts';
import { loadIdentity } from '../identity/index.ts';
import { natsAccess } from '../nats/access.ts';
import { defaultRegistryDir } from '../sidecar.ts';
import { auditDir } from '../audit/start-audit.ts';
import { stringFlag, type ParsedArgs } from './args.ts';

export interface StoreSource {
  bucket: string;
  nats?: { servers: string | string[]; access: NatsAccess } | undefined;
  /** Without NATS: the registry directory (tool pins) and the audit directory. */
  registryDir: string;
  auditDir: string;
}

export async function storeSource(args: ParsedArgs, env: Record<string, string | undefined>): Promise<StoreSource> {
  const path = stringFlag(args, 'config') ?? env.AGENTMESH_CONFIG;
  let config: SidecarConfig | undefined;
  if (path) config = resolveConfig({ file: await readConfigFile(path), env });
  const bucket = stringFlag(args, 'bucket') ?? config?.registry.bucket ?? 'agentmesh';
  const natsUrl = stringFlag(args, 'nats') ?? config?.registry.nats;
  let access: NatsAccess = {};
  if (config?.registry.nats && !stringFlag(args, 'nats')) {
    const cfg = config;
    const { cert, key } = cfg.identity;
    if (cfg.registry.tls && (cert === undefined || key === undefined)) {
      throw new MeshError('CONFIG_INVALID', 'identity.cert: reading the audit stream or tool pins over mTLS needs certificate files (identity.cert and identity.key)');
    }
    const identity = cfg.registry.tls && cert !== undefined && key !== undefined ? await loadIdentity({ ...cfg.identity, cert, key }) : undefined;
    access = natsAccess(cfg, () => {
      if (!identity) throw new MeshError('CONFIG_INVALID', 'registry.tls needs identity');
      return identity;
    });
  }
  const registryDir = stringFlag(args, 'registry-dir') ?? config?.registry.dir ?? defaultRegistryDir();
  const dir = stringFlag(args, 'dir') ?? (config ? auditDir(config, defaultRegistryDir()) : `${registryDir}/${bucket}-audit`);
  return { bucket, ...(natsUrl ? { nats: { servers: natsUrl, access } } : {}), registryDir, auditDir: dir };
}
