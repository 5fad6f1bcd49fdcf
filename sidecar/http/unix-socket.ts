// Unix-socket listener files: a stale socket left by a crashed sidecar is removed before binding, a live
// one (another process listening) or any other file at the path is refused naming the path.
import { connect } from 'node:net';
import { lstat, unlink } from 'node:fs/promises';
import { MeshError } from '../../sdk/errors.ts';

/** Makes `path` free to bind: absent, or a socket nobody answers on (removed). */
export async function prepareUnixSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new MeshError('CONFIG_INVALID', `listen.outbound: cannot use unix:${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  if (!isSocket) throw new MeshError('CONFIG_INVALID', `listen.outbound: unix:${path} exists and is not a socket; refusing to replace it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new MeshError('CONFIG_INVALID', `listen.outbound: unix:${path} is in use by another process`);
  await unlink(path).catch(() => undefined);
}

export async function removeUnixSocket(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}
