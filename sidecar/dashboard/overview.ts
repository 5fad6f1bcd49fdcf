// What the dashboard shows beside agents and edges (GET /api/overview): certificate expiry and policy
// figures, read from the sidecar's metrics by name; null where this sidecar has no such series.
import type { Registry } from 'prom-client';

export interface Overview {
  certificate: { expiresInSeconds: number } | null;
  policy: { version: number; denials: number; auditDenials: number } | null;
}

type Values = { value: number; labels: Record<string, string | number> }[];

export async function overview(registry: Registry): Promise<Overview> {
  const expiry = await values(registry, 'agentmesh_cert_expiry_seconds');
  const version = await values(registry, 'agentmesh_policy_version');
  const decisions = await values(registry, 'agentmesh_policy_decisions_total');
  const count = (decision: string) => decisions.filter((v) => v.labels.decision === decision).reduce((n, v) => n + v.value, 0);
  return {
    certificate: expiry[0] ? { expiresInSeconds: Math.round(expiry[0].value) } : null,
    policy: version[0] ? { version: version[0].value, denials: count('deny'), auditDenials: count('audit_deny') } : null,
  };
}

async function values(registry: Registry, name: string): Promise<Values> {
  const metric = registry.getSingleMetric(name);
  return metric ? ((await metric.get()) as { values: Values }).values : [];
}
