// Argument constraints of allow rules on MCP tools/call (values, pattern, min/max, maxLength, required):
// the compiled shape and the check that says which argument broke which constraint. Pure.
import type { ArgumentConstraint } from './policy-schema.ts';

export interface CompiledArgument extends Omit<ArgumentConstraint, 'pattern'> { pattern: RegExp | undefined }

/** Why the arguments break a constraint, or undefined when they keep all of them. */
export function argumentFailure(checks: readonly (readonly [string, CompiledArgument])[], args: unknown): string | undefined {
  const given = (typeof args === 'object' && args !== null && !Array.isArray(args) ? args : {}) as Record<string, unknown>;
  for (const [name, c] of checks) {
    const v = Object.hasOwn(given, name) ? given[name] : undefined;
    if (v === undefined || v === null) {
      if (c.required) return `argument '${name}' is required`;
      continue;
    }
    if (c.values && !c.values.some((x) => x === v)) return `argument '${name}' is not one of the allowed values`;
    if (c.pattern && (typeof v !== 'string' || !c.pattern.test(v))) return `argument '${name}' does not match the allowed pattern`;
    if (c.min !== undefined || c.max !== undefined) {
      if (typeof v !== 'number') return `argument '${name}' must be a number`;
      if (c.min !== undefined && v < c.min) return `argument '${name}' is below the minimum ${c.min}`;
      if (c.max !== undefined && v > c.max) return `argument '${name}' is above the maximum ${c.max}`;
    }
    if (c.maxLength !== undefined) {
      const length = typeof v === 'string' ? v.length : Array.isArray(v) ? v.length : undefined;
      if (length === undefined || length > c.maxLength) return `argument '${name}' is longer than ${c.maxLength}`;
    }
  }
  return undefined;
}
