// The online CA's memory of used join tokens: one file per jti in DIR/used-tokens, created with O_EXCL so
// a token works once, across restarts and concurrent requests. Files of expired tokens are pruned.
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshError } from '../../sdk/errors.ts';
import { JTI_PATTERN, type JoinClaims } from './join-token.ts';

export class UsedTokens {
  readonly #dir: string;

  constructor(caDir: string) {
    this.#dir = join(caDir, 'used-tokens');
  }

  async open(): Promise<this> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    await this.prune();
    return this;
  }

  /** Marks the token used; JOIN_TOKEN_USED when it already was. */
  async claim(claims: JoinClaims, usedBy: string): Promise<void> {
    if (!JTI_PATTERN.test(claims.jti)) throw new MeshError('JOIN_TOKEN_INVALID', 'join token refused: bad jti');
    const record = JSON.stringify({ id: claims.id, exp: claims.expiresAt.toISOString(), usedAt: new Date().toISOString(), usedBy });
    try {
      await writeFile(join(this.#dir, claims.jti), record, { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new MeshError('JOIN_TOKEN_USED', `join token for ${claims.id} was already used: tokens work once (make a new one with 'agentmesh ca token')`);
      }
      throw err;
    }
  }

  /** Forgets tokens past their expiry: the CA refuses them as expired anyway. */
  async prune(now = Date.now()): Promise<void> {
    for (const name of await readdir(this.#dir)) {
      if (!JTI_PATTERN.test(name)) continue;
      const exp = await readFile(join(this.#dir, name), 'utf8').then((t) => Date.parse((JSON.parse(t) as { exp?: string }).exp ?? ''), () => Number.NaN);
      // An hour of grace covers clock steps; unreadable entries stay (refusing a token is the safe side).
      if (Number.isFinite(exp) && exp + 3_600_000 < now) await rm(join(this.#dir, name), { force: true });
    }
  }
}
