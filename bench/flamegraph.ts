// A flame graph (SVG) of one V8 .cpuprofile: the call tree drawn bottom-up, each frame as wide as the
// busy time spent in it and in what it called, within a time window (the load phases, not start-up).
// `npm run bench -- --profile` writes one per process beside its profile; by hand:
//   node --import tsx bench/flamegraph.ts IN.cpuprofile OUT.svg [title]
// Colours: our code (sidecar/, registry/, sdk/) orange, undici green, node's own modules blue, garbage
// collection red, the rest (other packages, native, V8) grey. Hover a frame for its time.
import { readFileSync, writeFileSync } from 'node:fs';

export interface CpuProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
export interface CpuProfileData { nodes: CpuProfileNode[]; startTime: number; samples: number[]; timeDeltas: number[] }

const WIDTH = 1200;
const ROW = 16;
/** Frames narrower than this share of the busy time are left out (the SVG stays small and readable). */
const MIN_SHARE = 0.002;
const HIDDEN = new Set(['(idle)', '(root)']);

interface Frame { label: string; kind: 'own' | 'undici' | 'node' | 'gc' | 'other'; ms: number; children: Frame[] }

function labelOf(frame: CpuProfileNode['callFrame']): { label: string; kind: Frame['kind'] } {
  const name = frame.functionName || '(anonymous)';
  const url = frame.url;
  if (name === '(garbage collector)') return { label: name, kind: 'gc' };
  if (!url) return { label: name, kind: 'other' };
  if (url.startsWith('node:')) return { label: `${name} ${url}`, kind: 'node' };
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
  if (pkg) return { label: `${name} ${pkg[1]}/${pkg[2]}:${frame.lineNumber + 1}`, kind: pkg[1] === 'undici' ? 'undici' : 'other' };
  const own = /(?:^|\/)(?:dist\/)?((?:sidecar|registry|sdk)\/.*)$/.exec(url);
  if (own) return { label: `${name} ${own[1]}:${frame.lineNumber + 1}`, kind: 'own' };
  return { label: `${name} ${url.replace(/^file:\/\//, '')}:${frame.lineNumber + 1}`, kind: 'other' };
}

/** The busy call tree within `window` (µs on the profile's clock), idle time left out. */
export function busyTree(profile: CpuProfileData, window?: { from: number; to: number }): Frame {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (window && (at < window.from || at > window.to)) return;
    self.set(id, (self.get(id) ?? 0) + delta / 1000);
  });
  const build = (node: CpuProfileNode): Frame => {
    const { label, kind } = labelOf(node.callFrame);
    const children = (node.children ?? []).map((c) => byId.get(c)).filter((c): c is CpuProfileNode => c !== undefined && c.callFrame.functionName !== '(idle)').map(build);
    // Identical frames called from the same place (V8 splits them by optimisation state) are drawn as one.
    const merged = new Map<string, Frame>();
    for (const child of children) {
      const same = merged.get(child.label);
      if (same) { same.ms += child.ms; same.children.push(...child.children); } else merged.set(child.label, child);
    }
    const list = [...merged.values()].sort((a, b) => a.label.localeCompare(b.label));
    return { label, kind, ms: (self.get(node.id) ?? 0) + list.reduce((s, c) => s + c.ms, 0), children: list };
  };
  const childIds = new Set(profile.nodes.flatMap((n) => n.children ?? []));
  const roots = profile.nodes.filter((n) => !childIds.has(n.id)).map(build);
  return { label: 'all', kind: 'other', ms: roots.reduce((s, r) => s + r.ms, 0), children: roots.flatMap((r) => (HIDDEN.has(r.label) ? r.children : [r])) };
}

const COLOURS: Record<Frame['kind'], [number, number]> = { own: [28, 90], undici: [120, 45], node: [210, 55], gc: [0, 75], other: [45, 8] };

function colour(frame: Frame): string {
  const [hue, sat] = COLOURS[frame.kind];
  let h = 0;
  for (let i = 0; i < frame.label.length; i++) h = (h * 31 + frame.label.charCodeAt(i)) >>> 0;
  return `hsl(${hue + (h % 12) - 6},${sat}%,${62 + (h % 14)}%)`;
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The SVG of `tree` (from busyTree), with `title` above it. */
export function flameGraphSvg(tree: Frame, title: string): string {
  const total = tree.ms || 1;
  const rects: string[] = [];
  let depth = 0;
  const draw = (frame: Frame, x: number, level: number): void => {
    const w = (frame.ms / total) * WIDTH;
    if (frame.ms / total < MIN_SHARE) return;
    depth = Math.max(depth, level);
    rects.push(`<g><title>${escape(frame.label)}: ${frame.ms.toFixed(1)} ms, ${((frame.ms / total) * 100).toFixed(1)} %</title>`
      + `<rect x="${x.toFixed(1)}" y="@${level}" width="${Math.max(0, w - 0.5).toFixed(1)}" height="${ROW - 1}" fill="${colour(frame)}"/>`
      + (w > 40 ? `<text x="${(x + 3).toFixed(1)}" y="@${level}t">${escape(frame.label.slice(0, Math.floor((w - 6) / 6.6)))}</text>` : '') + '</g>');
    let at = x;
    for (const child of frame.children) {
      draw(child, at, level + 1);
      at += (child.ms / total) * WIDTH;
    }
  };
  draw({ ...tree, label: `all (busy ${tree.ms.toFixed(0)} ms)` }, 0, 0);
  const height = (depth + 1) * ROW + 40;
  // Bottom-up: level 0 on the last row. Rows are placed once the depth is known.
  const body = rects.join('\n').replace(/y="@(\d+)(t?)"/g, (_m, level: string, text: string) => {
    const y = height - 10 - (Number(level) + 1) * ROW;
    return `y="${text ? y + ROW - 4 : y}"`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="monospace" font-size="11">
<rect width="100%" height="100%" fill="#fff"/>
<text x="4" y="16" font-size="13">${escape(title)}</text>
<text x="4" y="30" font-size="10" fill="#555">orange: agentmesh · green: undici · blue: node · red: GC · grey: other; frames under ${MIN_SHARE * 100} % left out; hover for times</text>
${body}
</svg>
`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [input, output, title] = process.argv.slice(2);
  if (!input || !output) throw new Error('usage: node --import tsx bench/flamegraph.ts IN.cpuprofile OUT.svg [title]');
  const profile = JSON.parse(readFileSync(input, 'utf8')) as CpuProfileData;
  writeFileSync(output, flameGraphSvg(busyTree(profile), title ?? input));
}
