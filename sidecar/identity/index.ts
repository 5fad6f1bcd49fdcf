// Mesh identity: the CA, workload certificates, SPIFFE IDs and mTLS peer verification.
export { createCa, issueWorkload, signWorkload, caTrustDomain, certificateSpiffeId, type PemPair, type Validity } from './ca.ts';
export { caInit, caIssue } from './ca-files.ts';
export { parseSpiffeId, parseWorkloadId, peerSpiffeId, uriSans, type SpiffeId } from './spiffe.ts';
export { loadIdentity, serverTlsOptions, verifyClientPeer, clientConnectOptions, type Identity } from './tls.ts';
