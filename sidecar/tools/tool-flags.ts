// Flags for tool descriptions that aim at the model rather than describe the tool: invisible or
// bidirectional Unicode (text a reviewer cannot see), and instruction-like phrases (tool poisoning).
// Pure; a flag names the kind, never echoes the text.

export type ToolFlag = 'invisible-unicode' | 'bidi-unicode' | 'instructions';

/** Zero-width and other format characters, tag characters, variation selectors, soft hyphen. */
const INVISIBLE = /[\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200D\u2060-\u2064\u2065-\u2069\u3164\uFE00-\uFE0F\uFEFF\uFFA0\u{E0000}-\u{E007F}\u{E0100}-\u{E01EF}]/u;
/** Bidirectional controls (Trojan Source). */
const BIDI = /[\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;
const INSTRUCTIONS = [
  /\bignore\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|earlier|other)\s+(?:instructions|prompts|rules|directions)/i,
  /<\s*\/?\s*(?:important|system|instructions?|secret|hidden)\s*>/i,
  /\b(?:do\s+not|don'?t|never)\s+(?:tell|inform|mention|reveal|show|notify)\s+(?:this\s+to\s+)?(?:the\s+)?user/i,
  /\bbefore\s+using\s+this\s+tool\b.{0,80}\b(?:read|send|pass|include)\b/i,
  /\b(?:you\s+must|always)\s+(?:first\s+)?(?:call|use|invoke|read|send)\b.{0,80}\b(?:~\/|\.ssh|id_rsa|\.env|credentials|api[_ -]?key|password)/i,
  /\bsystem\s+prompt\b/i,
  /\bdisregard\s+(?:all\s+|any\s+)?(?:previous|prior|earlier)\b/i,
];

/** The flags a tool's text earns (description, and the descriptions inside its input schema). */
export function toolFlags(tool: { description?: string | undefined; inputSchema?: unknown }): ToolFlag[] {
  const text = `${tool.description ?? ''}\n${schemaText(tool.inputSchema, 0)}`;
  const flags: ToolFlag[] = [];
  if (INVISIBLE.test(text)) flags.push('invisible-unicode');
  if (BIDI.test(text)) flags.push('bidi-unicode');
  if (INSTRUCTIONS.some((re) => re.test(text))) flags.push('instructions');
  return flags;
}

/** The description strings in a JSON schema (bounded depth), where instructions hide as well. */
function schemaText(schema: unknown, depth: number): string {
  if (depth > 8 || typeof schema !== 'object' || schema === null) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(schema)) {
    if ((key === 'description' || key === 'title') && typeof value === 'string') parts.push(value);
    else if (typeof value === 'object') parts.push(schemaText(value, depth + 1));
  }
  return parts.join('\n');
}
