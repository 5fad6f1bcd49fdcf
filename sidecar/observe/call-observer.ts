// What happens around each call besides metrics: the trace span (started when the request arrives,
// ended when its response closes), the access log line and the tap event. The call event those two
// read is built only when one of them is on; the span reads the request context itself.
import type { IncomingMessage } from 'node:http';
import type { Logger } from '../log.ts';
import type { RequestContext } from '../request-context.ts';
import { accessLogger } from './access-log.ts';
import { callEvent } from './call-event.ts';
import type { CallTracer } from './call-trace.ts';
import type { Tap } from './tap.ts';

export interface CallObserver {
  /** The request arrived: starts its span (ctx.trace) when tracing is on. */
  begin(ctx: RequestContext, req: IncomingMessage): void;
  /** Its response closed with `status` (0 when cut) and the mesh's error code, if the mesh answered an error. */
  end(ctx: RequestContext, status: number, error: string | undefined): void;
}

export interface CallObserverOptions {
  tracer: CallTracer | undefined;
  /** Logs the access line when true. */
  accessLog: boolean;
  log: Logger;
  tap: Tap;
}

export function createCallObserver(options: CallObserverOptions): CallObserver {
  const { tracer, tap } = options;
  const access = options.accessLog ? accessLogger(options.log) : undefined;
  return {
    begin(ctx, req) {
      if (tracer) ctx.trace = tracer.begin(ctx, req.headers);
    },
    end(ctx, status, error) {
      ctx.trace?.end(ctx, status, error);
      if (!access && tap.clients === 0) return;
      const event = callEvent(ctx, status, error);
      access?.(event);
      tap.publish(event);
    },
  };
}
