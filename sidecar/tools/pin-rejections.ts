// Stored tool pins the sidecar ignored (unsigned, an "approval" not signed by the mesh CA, a first-use
// pin written over another value …): counted in agentmesh_tool_pins_rejected_total{reason} and logged
// at most once a minute per key and reason, since each read of a forged pin refuses it again.
import type { PinRejectReason } from '../../registry/index.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';

const LOG_EVERY_MS = 60_000;
const MAX_TRACKED = 4096;

export function pinRejections(metrics: Pick<Metrics, 'toolPinRejected'>, log: Logger): (key: string, reason: PinRejectReason, message: string) => void {
  const logged = new Map<string, number>();
  return (key, reason, message) => {
    metrics.toolPinRejected(reason);
    const id = `${reason} ${key}`;
    const now = Date.now();
    if (now - (logged.get(id) ?? -Infinity) < LOG_EVERY_MS) return;
    if (logged.size >= MAX_TRACKED) logged.clear();
    logged.set(id, now);
    log.warn({ key, reason, error: message }, 'ignored a tool pin');
  };
}
