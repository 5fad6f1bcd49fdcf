// The sidecar's identity at start-up: from the online CA (identity.ca: join token, renewal) or from
// certificate files (reloaded when they change). Either way one IdentityHolder with the current SVID.
import type { Logger } from '../log.ts';
import { reloadOnChange } from './file-reload.ts';
import { IdentityHolder } from './identity-holder.ts';
import { loadIdentity } from './tls.ts';

export interface IdentityConfig {
  trustDomain: string;
  bundle: string;
  cert?: string | undefined;
  key?: string | undefined;
  ca?: string | undefined;
  token?: string | undefined;
  tokenFile?: string | undefined;
}

export async function openIdentity(config: IdentityConfig, log: Logger): Promise<IdentityHolder> {
  // The CA client (jose, @peculiar/x509 for the CSR) loads only for sidecars that use one.
  if (config.ca) return (await import('./ca-renewal.ts')).identityFromCa({ ...config, ca: config.ca, log });
  const files = { cert: config.cert ?? '', key: config.key ?? '', bundle: config.bundle, trustDomain: config.trustDomain };
  const holder = new IdentityHolder(await loadIdentity(files));
  reloadOnChange(holder, files, log);
  return holder;
}
