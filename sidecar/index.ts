// The sidecar's public face for other folders (examples, tests): start one in-process, its config,
// and the mesh CA functions the CLI uses.
export { startSidecar, defaultRegistryDir, type Sidecar, type SidecarAddresses, type StartSidecarOptions } from './sidecar.ts';
export { resolveConfig, readConfigFile, parseDuration, SidecarConfigSchema, type SidecarConfig, type SidecarConfigInput } from './config.ts';
export { caGrant, caInit, caIssue, createCa, issueWorkload, loadIdentity, type Identity } from './identity/index.ts';
export { createLogger, type Logger } from './log.ts';
