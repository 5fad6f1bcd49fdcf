// The registry's public face: the record schema, backends, the watch-fed view and announcements.
// Other folders import only this file.
export * from './record.ts';
export type * from './types.ts';
export { openRegistry, type Registry, type RegistryOptions } from './registry.ts';
export type { Announcement, AnnouncedRecord, AnnouncementPatch } from './announcer.ts';
export { openNatsBackend, type NatsBackendOptions } from './nats-backend.ts';
export { openEmbeddedBackend } from './embedded-backend.ts';
export { RecordView } from './view.ts';
export { REGISTRY_CHANNEL, type RegistryEvent } from './diagnostics.ts';
