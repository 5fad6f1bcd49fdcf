// A listener that cannot bind, as a start-up error naming its config key (listen.inbound: 0.0.0.0:15443
// is already in use) instead of a raw EADDRINUSE stack.
import { MeshError } from '../../sdk/errors.ts';

export function listenFailed(key: string, address: { host: string; port: number } | { path: string }): (err: unknown) => never {
  return (err) => {
    const code = (err as NodeJS.ErrnoException).code;
    const where = 'path' in address ? `unix:${address.path}` : `${address.host}:${address.port}`;
    if (code === 'EADDRINUSE') throw new MeshError('CONFIG_INVALID', `${key}: ${where} is already in use (another sidecar?); set ${key} to a free address, or port 0`, { cause: err });
    if (code === 'EACCES' || code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new MeshError('CONFIG_INVALID', `${key}: cannot listen on ${where} (${code})`, { cause: err });
    throw err;
  };
}
