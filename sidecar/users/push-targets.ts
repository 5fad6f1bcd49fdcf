// Push-notification targets an agent may hand another agent (A2A CreateTaskPushNotificationConfig and
// inline push configs on SendMessage): https only, never loopback, private, link-local, metadata or other
// special addresses, unless listed in push.allow. Host names are not resolved (a DNS name passes).
import { isIPv4, isIPv6 } from 'node:net';
import { MeshError } from '../../sdk/errors.ts';

/** Names that reach the local host or a cloud metadata service whatever DNS says. */
const FORBIDDEN_NAMES = /^(localhost|.*\.localhost|metadata|metadata\.google\.internal|metadata\.goog|instance-data|instance-data\.ec2\.internal)$/;

/** [first address as a 32-bit number, prefix length, what it is] */
const V4_RANGES: readonly (readonly [number, number, string])[] = [
  [v4('0.0.0.0'), 8, 'the "this network" range'], [v4('10.0.0.0'), 8, 'a private address'],
  [v4('100.64.0.0'), 10, 'a shared (CGNAT) address'], [v4('127.0.0.0'), 8, 'a loopback address'],
  [v4('169.254.0.0'), 16, 'a link-local or cloud metadata address'], [v4('172.16.0.0'), 12, 'a private address'],
  [v4('192.0.0.0'), 24, 'an IETF protocol address'], [v4('192.0.2.0'), 24, 'a documentation address'],
  [v4('192.88.99.0'), 24, 'a 6to4 relay address'], [v4('192.168.0.0'), 16, 'a private address'],
  [v4('198.18.0.0'), 15, 'a benchmarking address'], [v4('198.51.100.0'), 24, 'a documentation address'],
  [v4('203.0.113.0'), 24, 'a documentation address'], [v4('224.0.0.0'), 4, 'a multicast address'],
  [v4('240.0.0.0'), 4, 'a reserved or broadcast address'],
];

export interface PushRules {
  /** push.allow: URLs (origin and path prefix) or host names allowed besides public https URLs. */
  allow: readonly string[];
}

const NO_URLS: readonly string[] = Object.freeze([]);

/**
 * Every push URL in an A2A request's params, for the methods that carry one (v1.0 and v0.3 shapes), in
 * the order met, each once. Most requests carry none: they get a shared empty list, nothing allocated.
 */
export function pushUrls(method: string, params: unknown): readonly string[] {
  if (typeof params !== 'object' || params === null) return NO_URLS;
  const p = params as Record<string, unknown>;
  let urls: Set<string> | undefined;
  if (method === 'CreateTaskPushNotificationConfig') {
    urls = configUrls(urls, p);
    urls = configUrls(urls, p.pushNotificationConfig);
    urls = configUrls(urls, p.push_notification_config);
    urls = configUrls(urls, p.config);
  } else if ((method === 'SendMessage' || method === 'SendStreamingMessage') && typeof p.configuration === 'object' && p.configuration !== null) {
    const conf = p.configuration as Record<string, unknown>;
    urls = configUrls(urls, conf.taskPushNotificationConfig);
    urls = configUrls(urls, conf.task_push_notification_config);
    urls = configUrls(urls, conf.pushNotificationConfig);
    urls = configUrls(urls, conf.push_notification_config);
  }
  return urls ? [...urls] : NO_URLS;
}

/** `urls` with the URL of config `c` and then of the config nested in it, if any (the set made on the first). */
function configUrls(urls: Set<string> | undefined, c: unknown): Set<string> | undefined {
  if (typeof c !== 'object' || c === null) return urls;
  const config = c as Record<string, unknown>;
  const nested = config.pushNotificationConfig ?? config.push_notification_config;
  return holderUrl(holderUrl(urls, config), nested);
}

function holderUrl(urls: Set<string> | undefined, holder: unknown): Set<string> | undefined {
  const url = typeof holder === 'object' && holder !== null ? (holder as Record<string, unknown>).url : undefined;
  if (url === undefined) return urls;
  return (urls ?? new Set<string>()).add(typeof url === 'string' ? url : JSON.stringify(url) ?? '');
}

/** Refuses (PUSH_TARGET_FORBIDDEN) the first URL the rules do not allow. */
export function checkPushUrls(urls: readonly string[], rules: PushRules): void {
  for (const url of urls) {
    const why = pushTargetRefusal(url, rules);
    if (why) {
      throw new MeshError('PUSH_TARGET_FORBIDDEN', `push-notification URL refused: ${why} (allow it with push.allow)`, { details: { url: url.slice(0, 256) } });
    }
  }
}

/** Why a push URL is refused, or undefined when it may be used. */
export function pushTargetRefusal(raw: string, rules: PushRules): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `'${raw.slice(0, 100)}' is not an absolute URL`;
  }
  if (allowed(url, rules.allow)) return undefined;
  if (url.protocol !== 'https:') return `${url.protocol.slice(0, -1)} is not allowed, only https`;
  // The WHATWG parser already turned integer, octal and hex IPv4 forms into dotted quads.
  const host = url.hostname.replace(/\.$/, '').toLowerCase();
  if (host.startsWith('[')) {
    const why = ipv6Refusal(host.slice(1, -1));
    return why && `${url.hostname} is ${why}`;
  }
  if (isIPv4(host)) {
    const why = ipv4Refusal(v4(host));
    return why && `${host} is ${why}`;
  }
  if (FORBIDDEN_NAMES.test(host)) return `${host} names the local host or a metadata service`;
  return undefined;
}

function allowed(url: URL, allow: readonly string[]): boolean {
  const host = url.hostname.toLowerCase();
  for (const entry of allow) {
    if (entry.includes('://')) {
      let base: URL;
      try { base = new URL(entry); } catch { continue; }
      if (base.origin === url.origin && url.pathname.startsWith(base.pathname)) return true;
    } else {
      let name: string;
      try { name = new URL(`https://${entry}`).hostname.toLowerCase(); } catch { continue; }
      if (url.protocol === 'https:' && name === host) return true;
    }
  }
  return false;
}

function v4(dotted: string): number {
  return dotted.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

function ipv4Refusal(address: number): string | undefined {
  for (const [base, bits, what] of V4_RANGES) {
    const size = 2 ** (32 - bits);
    if (address >= base && address < base + size) return what;
  }
  return undefined;
}

/** Checks an IPv6 literal (as the URL parser wrote it), including IPv4 embedded in it. */
function ipv6Refusal(text: string): string | undefined {
  if (!isIPv6(text) || text.includes('.')) return 'not an IPv6 address in canonical form';
  const words = ipv6Words(text);
  const embedded = (hi: number, lo: number) => ipv4Refusal((words[hi] ?? 0) * 65536 + (words[lo] ?? 0));
  const zeros = (from: number, to: number) => words.slice(from, to).every((w) => w === 0);
  if (zeros(0, 8)) return 'the unspecified address';
  if (zeros(0, 7) && words[7] === 1) return 'a loopback address';
  if (zeros(0, 5) && words[5] === 0xffff) return `an IPv4-mapped address: ${embedded(6, 7) ?? 'allowed only as plain IPv4'}`;
  if (zeros(0, 6)) return 'an IPv4-compatible address';
  if (zeros(0, 4) && words[4] === 0xffff && words[5] === 0) return 'an IPv4-translated address';
  if (words[0] === 0x64 && words[1] === 0xff9b) return 'a NAT64 address';
  if (words[0] === 0x2002) return 'a 6to4 address';
  if (words[0] === 0x2001 && words[1] === 0) return 'a Teredo address';
  if (words[0] === 0x2001 && words[1] === 0x0db8) return 'a documentation address';
  const first = words[0] ?? 0;
  if ((first & 0xffc0) === 0xfe80) return 'a link-local address';
  if ((first & 0xffc0) === 0xfec0) return 'a site-local address';
  if ((first & 0xfe00) === 0xfc00) return 'a unique local (private) address';
  if ((first & 0xff00) === 0xff00) return 'a multicast address';
  return undefined;
}

/** The eight 16-bit words of an IPv6 address as the URL parser writes it (hex words, `::` expanded). */
function ipv6Words(text: string): number[] {
  const [head = '', rest] = text.split('::');
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((w) => parseInt(w, 16)));
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  return [...left, ...Array<number>(Math.max(0, 8 - left.length - right.length)).fill(0), ...right].slice(0, 8);
}
