// The registry's public face: the record schema, backends, the watch-fed view and announcements.
// Other folders import only this file.
export * from './record.ts';
export type * from './types.ts';
