// Test hosts as Linux network namespaces: one bridge in the root namespace (the test's own address .254)
// and one namespace per host on a veth pair with its own address in a private 10.231.X.0/24 made here.
// Created and removed by the test (root and `ip` needed); nothing else on that range is ever contacted.
import { spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';

export interface TestHost {
  /** The namespace name (for `ip netns exec`). */
  readonly ns: string;
  /** Its address on the test subnet. */
  readonly ip: string;
  /** Prefix for a command that runs inside this host: ['ip', 'netns', 'exec', ns]. */
  readonly launcher: readonly string[];
}

export interface TestHosts extends AsyncDisposable {
  readonly hosts: readonly TestHost[];
  /** The test process's own address on the bridge (reaches every host). */
  readonly gateway: string;
  /** Removes the namespaces, their veths and the bridge. Idempotent; errors are collected, not thrown. */
  close(): Promise<string[]>;
}

function ip(args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, err: `${r.error?.message ?? ''}${r.stderr ?? ''}`.trim() };
}

/** Why namespaces cannot be made here (not root, no `ip`, kernel refuses), or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns add); run as root or in CI';
  const which = spawnSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' });
  if (which.stdout.trim() === '') return "the 'ip' command is missing (apt-get install iproute2)";
  const probe = `amprobe${randomBytes(3).toString('hex')}`;
  const added = ip(['netns', 'add', probe]);
  if (!added.ok) return `the kernel or container does not allow network namespaces: ${added.err}`;
  ip(['netns', 'del', probe]);
  const bridge = ip(['link', 'add', probe, 'type', 'bridge']);
  if (!bridge.ok) return `cannot create a bridge interface: ${bridge.err}`;
  ip(['link', 'del', probe]);
  return undefined;
}

/** Creates `count` hosts on a fresh subnet 10.231.X.0/24. On failure everything made so far is removed. */
export async function createTestHosts(count: number): Promise<TestHosts> {
  const tag = randomBytes(3).toString('hex');
  const subnet = `10.231.${randomInt(1, 254)}`;
  const bridge = `amb${tag}`;
  const hosts: TestHost[] = [];
  const made: Array<() => void> = [];
  let closed: Promise<string[]> | undefined;
  const close = (): Promise<string[]> => (closed ??= (async () => {
    const errors: string[] = [];
    for (const undo of made.reverse()) {
      try { undo(); } catch (err) { errors.push(String(err)); }
    }
    return errors;
  })());
  const run = (args: string[]): void => {
    const r = ip(args);
    if (!r.ok) throw new Error(`ip ${args.join(' ')}: ${r.err}`);
  };
  try {
    run(['link', 'add', bridge, 'type', 'bridge']);
    made.push(() => { ip(['link', 'del', bridge]); });
    run(['addr', 'add', `${subnet}.254/24`, 'dev', bridge]);
    run(['link', 'set', bridge, 'up']);
    for (let i = 0; i < count; i++) {
      const ns = `am-${tag}-h${i}`;
      const outside = `amv${tag}${i}`;
      const inside = `amp${tag}${i}`;
      run(['netns', 'add', ns]);
      // Deleting the namespace deletes the veth end inside it, and with it the pair.
      made.push(() => { ip(['netns', 'del', ns]); ip(['link', 'del', outside]); });
      run(['link', 'add', outside, 'type', 'veth', 'peer', 'name', inside]);
      run(['link', 'set', inside, 'netns', ns]);
      run(['-n', ns, 'link', 'set', inside, 'name', 'eth0']);
      run(['-n', ns, 'addr', 'add', `${subnet}.${i + 1}/24`, 'dev', 'eth0']);
      run(['-n', ns, 'link', 'set', 'eth0', 'up']);
      run(['-n', ns, 'link', 'set', 'lo', 'up']);
      run(['link', 'set', outside, 'master', bridge]);
      run(['link', 'set', outside, 'up']);
      hosts.push({ ns, ip: `${subnet}.${i + 1}`, launcher: ['ip', 'netns', 'exec', ns] });
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { hosts, gateway: `${subnet}.254`, close, [Symbol.asyncDispose]: async () => { await close(); } };
}
