// Tool integrity on the calling sidecar: pins each MCP tool's definition hash when first seen (or waits
// for `agentmesh tools approve` under `tools.pinning: approve` or a policy saying `tools: approve`), audits changes, shadows and flagged descriptions once per definition,
// and decides which instances a tools/call may reach. Pins come from the `{bucket}-tools` store: approvals
// signed by the mesh CA, first-use pins signed by the sidecar that took them (this one signs its own).
import { MeshError } from '../../sdk/errors.ts';
import type { McpRecord, PinRejectReason, RegistryView, ToolPin, ToolPins } from '../../registry/index.ts';
import type { CallAudit } from '../audit/call-audit.ts';
import type { Logger } from '../log.ts';
import { definitionHash } from './tool-definition.ts';
import { toolFlags } from './tool-flags.ts';

export interface ToolGuardOptions {
  store: ToolPins;
  view: RegistryView;
  /** The config's tools.pinning. */
  pinning: 'first-use' | 'approve';
  /** The policy document's `tools` in force now, if any: `approve` makes pinning approve-first whatever the config says. */
  policyPinning?: () => 'first-use' | 'approve' | undefined;
  flagged: 'warn' | 'block';
  /** Signs a first-use pin this sidecar takes (with its workload key). */
  sign: (pin: Omit<ToolPin, 'how'>) => Promise<string>;
  /** A pin read from the store that does not count (see #pin), and why. */
  rejected?: (key: string, reason: PinRejectReason, message: string) => void;
  audit: CallAudit | undefined;
  log: Logger;
}

const MAX_REPORTED = 10_000;

export interface ToolStatus {
  /** changed, shadowed and not-approved tools are refused; flagged ones too under tools.flagged: block. */
  state: 'pinned' | 'approved' | 'changed' | 'shadowed' | 'not-approved' | 'unpinned';
  hash: string;
  /** The pinned hash, when the definition differs from it. */
  pinned?: string;
  flags?: string[];
}

export class ToolGuard {
  readonly #o: ToolGuardOptions;
  readonly #pins = new Map<string, ToolPin>();
  /** Events already audited (event, tool, hash): each is recorded once, not at every registry change. */
  readonly #reported = new Set<string>();
  #unsubscribe: (() => void) | undefined;
  #closed = false;
  #scanning: Promise<void> | undefined;
  #rescan = false;

  constructor(options: ToolGuardOptions) {
    this.#o = options;
  }

  /**
   * Looks at every tool in the registry: pins new ones (first-use), audits changes, shadows and flags.
   * The first scan also starts following the registry (the sidecar calls it once its policy is in force).
   */
  scan(): Promise<void> {
    if (!this.#closed) this.#unsubscribe ??= this.#o.view.onChange(() => { void this.scan(); });
    if (this.#scanning) {
      this.#rescan = true;
      return this.#scanning;
    }
    const run = (async () => {
      do {
        this.#rescan = false;
        for (const record of this.#o.view.mcpServers()) {
          for (const tool of record.tools) await this.#look(record, tool).catch((err: unknown) => this.#o.log.warn({ err, mcp: record.name, tool: tool.name }, 'tool pin store error'));
        }
      } while (this.#rescan);
    })().finally(() => { this.#scanning = undefined; });
    this.#scanning = run;
    return run;
  }

  /**
   * The instances of `server` a tools/call of `tool` may go to: those announcing the pinned definition
   * under the pinned identity. Throws the refusal (changed, shadowed, not approved, flagged) otherwise.
   */
  async admit(server: string, tool: string, instances: readonly McpRecord[], requestId: string): Promise<McpRecord[]> {
    const offering = instances.filter((r) => r.tools.some((t) => t.name === tool));
    if (offering.length === 0) return [...instances]; // the server answers "unknown tool" itself
    let pin = await this.#pin(server, tool, false);
    const cached = pin;
    if (!cached || !offering.some((r) => matches(r, tool, cached))) pin = await this.#pin(server, tool, true); // approved meanwhile?
    if (!pin && this.#pinning() === 'first-use') {
      const first = offering[0];
      if (first) pin = await this.#create(first, tool);
    }
    const name = `${server}__${tool}`;
    if (!pin) {
      this.#report('blocked', server, tool, { requestId });
      throw new MeshError('TOOL_NOT_APPROVED', `tool '${tool}' of MCP server '${server}' (${name}) is not approved yet: run 'agentmesh tools approve ${server} ${tool}'`, { details: { server, tool } });
    }
    const pinned = pin;
    const admitted = offering.filter((r) => matches(r, tool, pinned));
    if (admitted.length === 0) {
      const sameOwner = offering.filter((r) => r.identity === pin.identity);
      const seen = definitionHash(findTool(sameOwner[0] ?? offering[0], tool) ?? { name: tool });
      if (sameOwner.length === 0) {
        this.#report('shadowed', server, tool, { pinned: pin.hash, seen, identity: offering[0]?.identity, requestId });
        throw new MeshError('TOOL_SHADOWED', `tool '${tool}' of MCP server '${server}' (${name}) is announced by ${offering[0]?.identity ?? 'another identity'}, not by ${pin.identity} whose definition is approved: refused`, { details: { server, tool } });
      }
      this.#report('blocked', server, tool, { pinned: pin.hash, seen, requestId });
      throw new MeshError('TOOL_DEFINITION_CHANGED', `tool '${tool}' of MCP server '${server}' (${name}) changed its definition since it was approved (pinned ${pin.hash.slice(0, 19)}…, now ${seen.slice(0, 19)}…): run 'agentmesh tools approve ${server} ${tool}'`, { details: { server, tool, pinned: pin.hash, seen } });
    }
    if (this.#o.flagged === 'block') {
      const flags = toolFlags(findTool(admitted[0], tool) ?? { name: tool });
      if (flags.length > 0) {
        this.#report('blocked', server, tool, { flags, requestId });
        throw new MeshError('TOOL_FLAGGED', `tool '${tool}' of MCP server '${server}' (${name}) has a flagged description (${flags.join(', ')}) and tools.flagged is block`, { details: { server, tool, flags } });
      }
    }
    return admitted;
  }

  /** What `agentmesh tools` shows for a tool of a record (from the pins this sidecar has read). */
  status(record: McpRecord, tool: McpRecord['tools'][number]): ToolStatus {
    const hash = definitionHash(tool);
    const flags = toolFlags(tool);
    const pin = this.#usable(this.#pins.get(`${record.name}.${tool.name}`));
    const state: ToolStatus['state'] = !pin ? (this.#pinning() === 'approve' ? 'not-approved' : 'unpinned')
      : pin.identity !== record.identity ? 'shadowed'
        : pin.hash !== hash ? 'changed'
          : pin.how === 'approved' ? 'approved' : 'pinned';
    return { state, hash, ...(pin && pin.hash !== hash ? { pinned: pin.hash } : {}), ...(flags.length > 0 ? { flags } : {}) };
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribe?.();
  }

  /** approve when the config or the policy in force says so (the stricter one wins); else first-use. */
  #pinning(): 'first-use' | 'approve' {
    return this.#o.pinning === 'approve' || this.#o.policyPinning?.() === 'approve' ? 'approve' : 'first-use';
  }

  async #look(record: McpRecord, tool: McpRecord['tools'][number]): Promise<void> {
    const seen = definitionHash(tool);
    const flags = toolFlags(tool);
    if (flags.length > 0) {
      if (this.#report('flagged', record.name, tool.name, { seen, flags, identity: record.identity })) {
        this.#o.log.warn({ mcp: record.name, tool: tool.name, flags }, 'flagged tool description');
      }
    }
    let pin = await this.#pin(record.name, tool.name, false);
    if (pin && (pin.hash !== seen || pin.identity !== record.identity)) pin = await this.#pin(record.name, tool.name, true);
    if (!pin) {
      if (this.#pinning() === 'first-use') await this.#create(record, tool.name);
      return;
    }
    if (pin.identity !== record.identity) {
      if (this.#report('shadowed', record.name, tool.name, { pinned: pin.hash, seen, identity: record.identity })) {
        this.#o.log.warn({ mcp: record.name, tool: tool.name, identity: record.identity, owner: pin.identity }, 'refusing a tool that shadows an approved one');
      }
    } else if (pin.hash !== seen) {
      if (this.#report('changed', record.name, tool.name, { pinned: pin.hash, seen, identity: record.identity })) {
        this.#o.log.warn({ mcp: record.name, tool: tool.name, pinned: pin.hash, seen }, 'tool definition changed: calls are blocked until it is approved again');
      }
    }
  }

  /**
   * The pin of a tool that counts now (see #usable). A pin once seen stays in force until a CA-signed
   * approval replaces it: a first-use pin written over it, or its removal, changes nothing here.
   */
  async #pin(server: string, tool: string, fresh: boolean): Promise<ToolPin | undefined> {
    const key = `${server}.${tool}`;
    const known = this.#pins.get(key);
    if (!fresh && known) return this.#usable(known);
    const pin = (await this.#o.store.get(server, tool))?.pin;
    if (pin && (!known || pin.how === 'approved' || samePin(pin, known))) this.#pins.set(key, pin);
    else if (pin && known) this.#o.rejected?.(key, 'replaced', `the first-use pin of '${server}__${tool}' changed from ${known.hash} to ${pin.hash} without an approval: ignored`);
    return this.#usable(this.#pins.get(key));
  }

  /**
   * Under approve, only an approval counts: a first-use pin (taken by a sidecar under first-use, or before
   * the policy saying approve was in force) does not let a tool through.
   */
  #usable(pin: ToolPin | undefined): ToolPin | undefined {
    return pin && this.#pinning() === 'approve' && pin.how !== 'approved' ? undefined : pin;
  }

  /** Takes a first-use pin (create-if-absent, signed by this sidecar); it counts only if the store then holds it as the key's first value. */
  async #create(record: McpRecord, toolName: string): Promise<ToolPin | undefined> {
    const tool = findTool(record, toolName);
    if (!tool) return undefined;
    const pin: ToolPin = { server: record.name, tool: toolName, hash: definitionHash(tool), identity: record.identity, how: 'first-use', at: new Date().toISOString() };
    const { how: _how, ...unsigned } = pin;
    const created = await this.#o.store.create(pin, await this.#o.sign(unsigned));
    const stored = await this.#pin(record.name, toolName, true);
    if (created && stored && samePin(stored, pin)) this.#report('pinned', record.name, toolName, { pinned: pin.hash, identity: record.identity });
    return stored;
  }

  /** Audits an event once per (event, tool, hashes); true when it was new. */
  #report(event: 'pinned' | 'changed' | 'shadowed' | 'flagged' | 'blocked', server: string, tool: string,
    extra: { pinned?: string; seen?: string; identity?: string | undefined; flags?: string[]; requestId?: string }): boolean {
    const key = `${event} ${server} ${tool} ${extra.pinned ?? ''} ${extra.seen ?? ''} ${extra.identity ?? ''}`;
    if (event !== 'blocked') {
      if (this.#reported.has(key)) return false;
      if (this.#reported.size >= MAX_REPORTED) this.#reported.clear();
      this.#reported.add(key);
    }
    this.#o.audit?.tool({
      event, server, tool,
      ...(extra.identity !== undefined ? { identity: extra.identity } : {}),
      ...(extra.pinned !== undefined ? { pinned: extra.pinned } : {}),
      ...(extra.seen !== undefined ? { seen: extra.seen } : {}),
      ...(extra.flags !== undefined ? { flags: extra.flags } : {}),
      ...(extra.requestId !== undefined ? { requestId: extra.requestId } : {}),
    });
    return true;
  }
}

function findTool(record: McpRecord | undefined, tool: string): McpRecord['tools'][number] | undefined {
  return record?.tools.find((t) => t.name === tool);
}

function samePin(a: ToolPin, b: ToolPin): boolean {
  return a.hash === b.hash && a.identity === b.identity && a.how === b.how;
}

function matches(record: McpRecord, tool: string, pin: ToolPin): boolean {
  const def = findTool(record, tool);
  return def !== undefined && record.identity === pin.identity && definitionHash(def) === pin.hash;
}
