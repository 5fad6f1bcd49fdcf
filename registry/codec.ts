// Encoding of registry values: JSON validated with the record schema on the way in and out.
// The only place a stored value becomes a RegistryRecord; it never decides what to do with a bad one.
import { MeshError } from '../sdk/errors.ts';
import { RegistryRecordSchema, recordKey, type RegistryRecord } from './record.ts';

function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** Validates a record about to be written; throws REGISTRY_RECORD_INVALID naming every bad field. */
export function validateRecord(record: RegistryRecord): RegistryRecord {
  const result = RegistryRecordSchema.safeParse(record);
  if (!result.success) {
    throw new MeshError('REGISTRY_RECORD_INVALID', `refusing to write an invalid record: ${describeIssues(result.error.issues)}`);
  }
  return result.data;
}

export function encodeRecord(record: RegistryRecord): string {
  return JSON.stringify(validateRecord(record));
}

/** Parses and validates a stored value; the key must match the record it holds. */
export function decodeRecord(key: string, text: string): RegistryRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new MeshError('REGISTRY_RECORD_INVALID', `registry value at '${key}' is not JSON`, { cause: err });
  }
  const result = RegistryRecordSchema.safeParse(value);
  if (!result.success) {
    throw new MeshError('REGISTRY_RECORD_INVALID', `registry value at '${key}' is not a valid record: ${describeIssues(result.error.issues)}`);
  }
  if (recordKey(result.data) !== key) {
    throw new MeshError('REGISTRY_RECORD_INVALID', `registry value at '${key}' describes '${recordKey(result.data)}'`);
  }
  return result.data;
}
