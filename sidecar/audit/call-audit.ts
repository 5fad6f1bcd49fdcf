// The request path's one touch of the audit: trackRequest calls done() when a request's response closes,
// which queues the call record.
import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '../request-context.ts';
import type { CallRecorder } from '../metrics.ts';
import type { AuditLog } from './audit-log.ts';
import { callFields, traceIdOf, type ToolFields } from './audit-record.ts';

export class CallAudit implements CallRecorder {
  readonly log: AuditLog;
  /** This sidecar's SPIFFE ID: the caller of its outbound calls (whatever reaches the outbound listener acts as the local agent). */
  readonly #self: string | undefined;

  constructor(log: AuditLog, self?: string) {
    this.log = log;
    this.#self = self;
  }

  /**
   * Queues the record of a finished call. A method taking the request, not a closure made per request:
   * the traceparent is read at the end, which is the one the request arrived with (nothing rewrites it).
   */
  done(ctx: RequestContext, req: IncomingMessage, code: number): void {
    const fields = callFields(ctx, code, traceIdOf(ctx.trace, req.headers.traceparent));
    if (fields.caller === undefined && fields.direction === 'outbound' && this.#self !== undefined) fields.caller = this.#self;
    this.log.record(fields);
  }

  tool(fields: Omit<ToolFields, 'kind'>): void {
    this.log.record({ kind: 'tool', ...fields });
  }

  /** Stores what is pending (spooling what cannot be sent); idempotent. */
  close(): Promise<void> {
    return this.log.close();
  }
}
