// Human-readable output for the CLI: agent tables and streamed A2A events as lines of text.
import type { StreamResponse, Part } from '@a2a-js/sdk';

export function partsText(parts: readonly Part[] | undefined): string {
  return (parts ?? []).map((p) => {
    const c = p.content;
    if (!c) return '';
    switch (c.$case) {
      case 'text': return c.value;
      case 'data': return JSON.stringify(c.value);
      case 'url': return c.value;
      case 'raw': return `<${c.value.length} bytes>`;
      default: return c satisfies never;
    }
  }).join('');
}

/** One line per stream event, or undefined for events with nothing to show. */
export function formatEvent(event: StreamResponse): string | undefined {
  const p = event.payload;
  if (!p) return undefined;
  switch (p.$case) {
    case 'task': return `task ${p.value.id} ${stateName(p.value.status?.state)}`;
    case 'message': return partsText(p.value.parts);
    case 'statusUpdate': {
      const text = partsText(p.value.status?.message?.parts);
      return `[${stateName(p.value.status?.state)}]${text ? ` ${text}` : ''}`;
    }
    case 'artifactUpdate': return partsText(p.value.artifact?.parts);
    default: return p satisfies never;
  }
}

const STATE_NAMES = ['unspecified', 'submitted', 'working', 'completed', 'failed', 'canceled', 'input-required', 'rejected', 'auth-required'];

export function stateName(state: number | undefined): string {
  return STATE_NAMES[state ?? 0] ?? String(state);
}

export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}
