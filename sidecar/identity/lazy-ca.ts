// The mesh CA's functions, loading @peculiar/x509 and reflect-metadata (~10 MB RSS) on first use only:
// a running sidecar reads its certificates with node:crypto (tls.ts) and never issues one. Forwards only.
import type * as Ca from './ca.ts';
import type * as CaFiles from './ca-files.ts';

export const createCa: typeof Ca.createCa = async (options) => (await import('./ca.ts')).createCa(options);
export const issueWorkload: typeof Ca.issueWorkload = async (options) => (await import('./ca.ts')).issueWorkload(options);
export const signWorkload: typeof Ca.signWorkload = async (options) => (await import('./ca.ts')).signWorkload(options);
export const caInit: typeof CaFiles.caInit = async (options) => (await import('./ca-files.ts')).caInit(options);
export const caIssue: typeof CaFiles.caIssue = async (options) => (await import('./ca-files.ts')).caIssue(options);
