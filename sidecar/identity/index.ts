// Mesh identity: the CA, workload certificates, SPIFFE IDs and mTLS peer verification.
export { createCa, issueWorkload, signWorkload, caInit, caIssue } from './lazy-ca.ts';
export type { PemPair, Validity } from './ca.ts';
export { parseSpiffeId, parseWorkloadId, peerSpiffeId, uriSans, type SpiffeId } from './spiffe.ts';
export { loadIdentity, serverTlsOptions, verifyClientPeer, clientConnectOptions, type Identity } from './tls.ts';
export { svidRefusal, peerSvidRefusal, MAX_SPIFFE_ID_BYTES } from './svid-rules.ts';
export { openIdentity, type IdentityConfig } from './open-identity.ts';
export { IdentityHolder, type IdentitySource } from './identity-holder.ts';
export { caGrant, loadGrants, assertOwnsAgentName, type LoadedGrants } from './grants.ts';
