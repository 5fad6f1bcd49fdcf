// Encoding of registry values: JSON validated with the record schema on the way in and out.
import { MeshError } from '../sdk/index.ts';
import { RegistryRecordSchema, recordKey, type RegistryRecord } from './record.ts';

export function encodeRecord(record: RegistryRecord): string {
  const result = RegistryRecordSchema.safeParse(record);
  if (!result.success) {
    throw new MeshError('REGISTRY_RECORD_INVALID', `refusing to write an invalid record: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return JSON.stringify(result.data);
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
    throw new MeshError('REGISTRY_RECORD_INVALID', `registry value at '${key}' is not a valid record: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  if (recordKey(result.data) !== key) {
    throw new MeshError('REGISTRY_RECORD_INVALID', `registry value at '${key}' describes '${recordKey(result.data)}'`);
  }
  return result.data;
}
