// The registry's public face: the record schema, backends, the watch-fed view and announcements.
// Other folders import only this file.
import type * as NatsAdmin from './nats-admin.ts';
import type * as NatsBackend from './nats-backend.ts';
import type * as AuditStream from './audit-stream.ts';
import type * as ToolPinStore from './tool-pin-store.ts';
import type * as NatsProbe from './nats-probe.ts';
export * from './record.ts';
export type * from './types.ts';
export { openRegistry, type Registry, type RegistryOptions } from './registry.ts';
export { announce, type Announcement, type AnnouncedRecord, type AnnouncementPatch, type AnnounceOptions, type DistributiveOmit } from './announcer.ts';
export type { NatsBackendOptions } from './nats-backend.ts';
/** The NATS backend, loading the NATS client on first use: a sidecar on the embedded registry never needs it. */
export const openNatsBackend: typeof NatsBackend.openNatsBackend = async (options) => (await import('./nats-backend.ts')).openNatsBackend(options);
export type { BucketStatus } from './nats-admin.ts';
/** Creates the mesh's KV buckets (the admin's step); loads the NATS client on first use. */
export const initNatsBuckets: typeof NatsAdmin.initNatsBuckets = async (options) => (await import('./nats-admin.ts')).initNatsBuckets(options);
export type { NatsProbe as NatsProbeResult } from './nats-probe.ts';
/** Connects once with a sidecar's NATS access and reads the bucket (`agentmesh check`); loads the NATS client on first use. */
export const probeNats: typeof NatsProbe.probeNats = async (options) => (await import('./nats-probe.ts')).probeNats(options);
export { openEmbeddedBackend, type EmbeddedBackendOptions } from './embedded-backend.ts';
export { RecordView, type RecordViewOptions } from './view.ts';
export { encodeRecord, decodeRecord, validateRecord } from './codec.ts';
export { REGISTRY_CHANNEL, type RegistryEvent } from './diagnostics.ts';
export { natsAccessWarning, natsServers, type NatsAccess, type NatsTls } from './nats-access.ts';
export { recordCodec, rejectReason, type RecordCodec, type RecordSigner, type RecordVerifier, type RejectReason, type SealedRecord } from './record-codec.ts';
export { createRecordSigner, createRecordVerifier, RECORD_TYPE, type RecordVerifierOptions, type SigningIdentity } from './signed-records.ts';
export { nameOwnership, type Ownership, type Registrations } from './name-binding.ts';
export { signGrant, verifyGrant, GRANT_TYPE, type Grant } from './name-grant.ts';
export { TrustBundle } from './trust-chain.ts';
export { openKeyValueStore, safeKey, type KeyValueStore } from './key-value-store.ts';
export type { AuditStream, AuditStreamOptions, AuditStreamRecord } from './audit-stream.ts';
/** The JetStream audit stream `{bucket}-audit`; loads the NATS client on first use. */
export const openAuditStream: typeof AuditStream.openAuditStream = async (options) => (await import('./audit-stream.ts')).openAuditStream(options);
export type { ToolPinStore as ToolPins, ToolPinStoreOptions } from './tool-pin-store.ts';
export { ToolPinSchema, TOOL_PIN_HISTORY, type ToolPin } from './tool-pin-schema.ts';
export { createPinVerifier, signApproval, signFirstUse, APPROVAL_TYPE, FIRST_USE_TYPE, type PinRejectReason, type PinVerifier, type VerifiedPin } from './tool-pin-seal.ts';
/** Tool definition pins: the KV bucket `{bucket}-tools`, or a file without NATS. */
export const openToolPinStore: typeof ToolPinStore.openToolPinStore = async (options) => (await import('./tool-pin-store.ts')).openToolPinStore(options);
export { openPolicyStore, decodeStoredPolicy, watchFile, type PolicyStore, type PolicyStoreOptions, type StoredPolicy } from './policy-store.ts';
