// Who serves an MCP server name when several identities claim it (DESIGN.md "Trust model"): the holder
// of a grant if exactly one identity holds one; otherwise nobody: a conflict is refused and reported,
// never load-balanced across. Earliest-started cannot decide: startedAt is whatever the claimant wrote.
import { recordKey, type McpRecord } from './record.ts';

export type OwnershipReport = (key: string, reason: 'mcp_name_conflict' | 'name_not_owned', message: string) => void;

export class McpOwners {
  readonly #report: OwnershipReport;
  /** name → what was last reported for it, so a conflict is reported when it starts or changes, not per read. */
  readonly #reported = new Map<string, string>();

  constructor(report: OwnershipReport) {
    this.#report = report;
  }

  /** The records of `name` that may be served, from its fresh entries. */
  owned(name: string, entries: readonly { record: McpRecord; granted: boolean }[]): McpRecord[] {
    const first = entries[0]?.record.identity;
    if (entries.every((e) => e.record.identity === first)) {
      if (this.#reported.size > 0) this.#reported.delete(name);
      return entries.map((e) => e.record);
    }
    const holders = new Set(entries.filter((e) => e.granted).map((e) => e.record.identity));
    const identities = [...new Set(entries.map((e) => e.record.identity))].sort();
    if (holders.size === 1) {
      const [holder] = holders;
      this.#once(name, `granted ${holder ?? ''}`, entries.filter((e) => e.record.identity !== holder), 'name_not_owned',
        (id) => `MCP server name '${name}' is granted to ${holder ?? ''}; ignoring the claim of ${id}`);
      return entries.filter((e) => e.record.identity === holder).map((e) => e.record);
    }
    this.#once(name, `conflict ${identities.join(' ')}`, entries, 'mcp_name_conflict',
      () => `MCP server name '${name}' is claimed by ${identities.join(' and ')}${holders.size > 1 ? ', each with a grant' : ' and no grant decides'}: serving none of them`);
    return [];
  }

  #once(name: string, state: string, refused: readonly { record: McpRecord }[], reason: 'mcp_name_conflict' | 'name_not_owned', message: (identity: string) => string): void {
    if (this.#reported.get(name) === state) return;
    this.#reported.set(name, state);
    for (const { record } of refused) this.#report(recordKey(record), reason, message(record.identity));
  }
}
