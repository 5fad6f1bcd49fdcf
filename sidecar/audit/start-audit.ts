// Opens the audit writer a sidecar's config asks for: the JetStream sink with an on-disk spool when the
// registry is NATS, else the JSON-lines file sink; both in audit.dir (default: {registry dir}/{bucket}-audit).
// The writer's modules load only when audit is on.
import { join } from 'node:path';
import type { NatsAccess } from '../../registry/index.ts';
import type { SidecarConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { CallAudit } from './call-audit.ts';
import { auditOwner } from '../nats/server-config.ts';

export function auditDir(config: Pick<SidecarConfig, 'audit' | 'registry'>, registryDir: string): string {
  return config.audit.dir ?? join(config.registry.dir ?? registryDir, `${config.registry.bucket}-audit`);
}

export async function startAudit(options: {
  config: SidecarConfig;
  instance: string;
  /** This sidecar's SPIFFE ID (names its audit subject). */
  identity: string;
  registryDir: string;
  nats: { nats: string | string[]; natsAccess: NatsAccess } | undefined;
  log: Logger;
}): Promise<CallAudit | undefined> {
  const { config, instance, log } = options;
  if (!config.audit.enabled) return undefined;
  const [{ AuditLog }, { fileSink, natsSink }, { AuditSpool }, { CallAudit }] = await Promise.all([
    import('./audit-log.ts'), import('./audit-sink.ts'), import('./audit-spool.ts'), import('./call-audit.ts'),
  ]);
  const dir = auditDir(config, options.registryDir);
  let lastWarn = 0;
  const onError = (err: unknown) => {
    // One warning a minute at most: an absent NATS must not flood the log.
    if (Date.now() - lastWarn < 60_000) return;
    lastWarn = Date.now();
    log.warn({ err }, 'audit records are waiting: cannot store them (they are spooled and sent later)');
  };
  const sink = options.nats
    ? natsSink({ nats: options.nats.nats, access: options.nats.natsAccess, bucket: config.registry.bucket, instance, owner: auditOwner(options.identity), ackTimeoutMs: config.audit.ackTimeout, onError })
    : await fileSink(dir, instance);
  const spool = options.nats ? await AuditSpool.open(join(dir, `${instance}.spool.jsonl`), config.audit.spoolSize) : undefined;
  const auditLog = await AuditLog.open({
    instance, sink, ...(spool ? { spool } : {}), maxPending: config.audit.maxPending, batchSize: config.audit.batchSize,
    flushIntervalMs: config.audit.flushInterval, retryMs: 1000, onError,
  });
  log.info({ audit: sink.describe }, 'audit stream on');
  return new CallAudit(auditLog, options.identity);
}
