// examples/kubernetes: every manifest validates against the Kubernetes JSON schemas shipped by
// kubernetes-models; the pieces fit (names, ports, mounts, configs parse with the sidecar's own schema),
// and nats.conf with the output of `agentmesh nats config` is a config nats-server accepts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import { resolveConfig } from '../sidecar/config.ts';
import { createMetrics } from '../sidecar/metrics.ts';
import { parsePolicy } from '../sidecar/policy/policy-schema.ts';
import { caInit, caIssue } from '../sidecar/identity/index.ts';
import { natsServerBinary } from './support/nats-server.ts';
import { ROOT, runCli } from './support/sidecar-process.ts';

const DIR = join(ROOT, 'examples/kubernetes');
const SCHEMAS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace, 'v1/ConfigMap': ConfigMap, 'v1/Secret': Secret, 'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim, 'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet, 'batch/v1/Job': Job,
};

interface Manifest { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [key: string]: unknown }
interface Container { name: string; image: string; args?: string[]; command?: string[]; env?: { name: string; value?: string }[]; volumeMounts?: { name: string; mountPath: string; subPath?: string }[]; ports?: { containerPort: number }[] }
interface PodSpec { containers: Container[]; initContainers?: Container[]; volumes?: { name: string; configMap?: { name: string }; secret?: { secretName: string }; persistentVolumeClaim?: { claimName: string } }[] }

const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort();
const manifests: (Manifest & { file: string })[] = files.flatMap((file) => parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((doc) => {
  if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map(String).join('; ')}`);
  return { ...(doc.toJS() as Manifest), file };
}));
const find = (kind: string, name: string): Manifest => {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  assert.ok(found, `${kind} ${name} is in examples/kubernetes`);
  return found;
};
const podOf = (m: Manifest): PodSpec => (m as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
const configData = (name: string, key: string): string => {
  const data = (find('ConfigMap', name) as unknown as { data: Record<string, string> }).data[key];
  assert.ok(data, `ConfigMap ${name} has ${key}`);
  return data;
};
const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('examples/kubernetes', () => {
  test('every manifest validates against its Kubernetes schema, in the agentmesh namespace', () => {
    assert.ok(manifests.length >= 15, `found ${manifests.length} manifests in ${files.join(', ')}`);
    const problems: string[] = [];
    for (const m of manifests) {
      const Model = SCHEMAS[`${m.apiVersion}/${m.kind}`];
      if (!Model) { problems.push(`${m.file}: no schema for ${m.apiVersion} ${m.kind}`); continue; }
      const { file: _file, ...doc } = m;
      try { new Model(doc as never).validate(); } catch (err) { problems.push(`${m.file} ${m.kind}/${m.metadata.name}: ${String(err)}`); }
      if (m.kind !== 'Namespace' && m.metadata.namespace !== 'agentmesh') problems.push(`${m.file} ${m.kind}/${m.metadata.name}: namespace ${m.metadata.namespace}`);
    }
    assert.deepEqual(problems, []);
  });

  test('the schemas catch a broken manifest (the check has teeth)', () => {
    const broken = structuredClone(find('Deployment', 'researcher')) as unknown as { spec: { replicas: unknown; template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } } };
    broken.spec.replicas = 'one';
    assert.throws(() => new Deployment(broken as never).validate(), /replicas must be integer/);
  });

  test('every ConfigMap, Secret and volume claim a pod mounts is defined here; images are agentmesh:<package version>', () => {
    const missing: string[] = [];
    for (const m of manifests.filter((x) => ['Deployment', 'StatefulSet', 'Job'].includes(x.kind))) {
      const pod = podOf(m);
      const claims = ((m as unknown as { spec: { volumeClaimTemplates?: { metadata: { name: string } }[] } }).spec.volumeClaimTemplates ?? []).map((c) => c.metadata.name);
      for (const v of pod.volumes ?? []) {
        if (v.configMap && !manifests.some((x) => x.kind === 'ConfigMap' && x.metadata.name === v.configMap?.name)) missing.push(`${m.metadata.name}: ConfigMap ${v.configMap.name}`);
        if (v.secret && !manifests.some((x) => x.kind === 'Secret' && x.metadata.name === v.secret?.secretName)) missing.push(`${m.metadata.name}: Secret ${v.secret.secretName}`);
        if (v.persistentVolumeClaim && !manifests.some((x) => x.kind === 'PersistentVolumeClaim' && x.metadata.name === v.persistentVolumeClaim?.claimName)) missing.push(`${m.metadata.name}: PVC ${v.persistentVolumeClaim.claimName}`);
      }
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
        for (const mount of c.volumeMounts ?? []) if (!pod.volumes?.some((v) => v.name === mount.name) && !claims.includes(mount.name)) missing.push(`${m.metadata.name}/${c.name}: volume ${mount.name}`);
        if (c.image.startsWith('agentmesh:') && c.image !== `agentmesh:${version}`) missing.push(`${m.metadata.name}/${c.name}: image ${c.image}, package is ${version}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  test('the agent pod: agent + sidecar sharing localhost, AGENTMESH_URL is the outbound listener, the token from a Secret, the pod IP advertised', () => {
    const pod = podOf(find('Deployment', 'researcher'));
    assert.equal(pod.containers.length, 2);
    const sidecar = pod.containers.find((c) => c.image.startsWith('agentmesh:'));
    const agent = pod.containers.find((c) => c !== sidecar);
    assert.ok(sidecar && agent);
    const args = sidecar.args ?? [];
    assert.deepEqual(args.slice(0, 3), ['sidecar', '--config', '/etc/agentmesh/sidecar.yaml']);
    assert.equal(args[args.indexOf('--advertise') + 1], '$(POD_IP)');
    assert.ok(sidecar.env?.some((e) => e.name === 'POD_IP'), 'POD_IP comes from the downward API');
    // The sidecar config parses with the sidecar's own strict schema, with the flag as Kubernetes expands it.
    const config = resolveConfig({ file: parseAllDocuments(configData('researcher-sidecar', 'sidecar.yaml'))[0]?.toJS(), flags: { advertise: '10.1.2.3' } });
    assert.equal(config.advertise, '10.1.2.3');
    const outbound = config.listen.outbound as { host: string; port: number };
    assert.equal(agent.env?.find((e) => e.name === 'AGENTMESH_URL')?.value, `http://${outbound.host}:${outbound.port}`);
    assert.equal(new URL(config.agent?.url ?? '').hostname, '127.0.0.1', 'the sidecar reaches the agent over the pod\'s localhost');
    assert.ok(agent.ports?.some((p) => p.containerPort === Number(new URL(config.agent?.url ?? '').port)));
    // Identity: the online CA's Service, the join token file from a Secret mount.
    const ca = new URL(config.identity.ca ?? '');
    const caService = find('Service', 'agentmesh-ca') as unknown as { spec: { ports: { port: number; targetPort: number }[] } };
    assert.equal(ca.hostname, 'agentmesh-ca.agentmesh.svc.cluster.local');
    assert.equal(Number(ca.port), caService.spec.ports[0]?.port);
    const tokenMount = sidecar.volumeMounts?.find((m) => config.identity.tokenFile?.startsWith(`${m.mountPath}/`));
    assert.ok(pod.volumes?.find((v) => v.name === tokenMount?.name)?.secret, 'identity.tokenFile is a Secret');
    // Registry: the three NATS pods by their stable names, over mTLS.
    assert.equal(config.registry.tls, true);
    assert.equal(config.registry.replicas, 3, 'R3 buckets on the 3-node NATS');
    assert.deepEqual([config.registry.nats].flat(), [0, 1, 2].map((i) => `nats://nats-${i}.nats-cluster.agentmesh.svc.cluster.local:4222`));
  });

  test('NATS: 3 nodes with JetStream on persistent volumes; the CA: Deployment + Service; Jobs run nats init and policy apply as the admin', () => {
    const nats = find('StatefulSet', 'nats') as unknown as { spec: { replicas: number; serviceName: string; volumeClaimTemplates: { metadata: { name: string } }[] } };
    assert.equal(nats.spec.replicas, 3);
    assert.equal(nats.spec.serviceName, 'nats-cluster');
    assert.equal((find('Service', 'nats-cluster') as unknown as { spec: { clusterIP: string } }).spec.clusterIP, 'None');
    assert.equal(nats.spec.volumeClaimTemplates[0]?.metadata.name, 'data');
    assert.ok(podOf(find('StatefulSet', 'nats')).containers[0]?.volumeMounts?.some((m) => m.name === 'data' && m.mountPath === '/data'), 'JetStream stores on the claim');
    const conf = configData('nats-config', 'nats.conf');
    for (let i = 0; i < 3; i++) assert.match(conf, new RegExp(`nats://nats-${i}\\.nats-cluster\\.agentmesh\\.svc\\.cluster\\.local:6222`));
    const init = podOf(find('StatefulSet', 'nats')).initContainers?.[0];
    assert.match(init?.command?.join(' ') ?? '', /agentmesh\.mjs nats config .*--store-dir \/data\/jetstream > \/etc\/nats\/generated\/access\.conf/);
    const caPod = podOf(find('Deployment', 'agentmesh-ca'));
    assert.deepEqual(caPod.containers[0]?.args?.slice(0, 2), ['ca', 'serve']);
    assert.match(caPod.containers[0]?.args?.join(' ') ?? '', /--listen 0\.0\.0\.0:15100/);
    const admin = resolveConfig({ file: parseAllDocuments(configData('agentmesh-admin', 'admin.yaml'))[0]?.toJS() });
    assert.equal(admin.identity.cert, '/etc/agentmesh/admin/cert.pem');
    assert.deepEqual(podOf(find('Job', 'agentmesh-nats-init')).containers[0]?.args, ['nats', 'init', '--config', '/etc/agentmesh/admin.yaml']);
    assert.deepEqual(podOf(find('Job', 'agentmesh-policy-apply')).containers[0]?.args?.slice(0, 2), ['policy', 'apply']);
    const policy = parsePolicy(configData('agentmesh-policy', 'policy.yaml'), 'examples/kubernetes/policy.yaml');
    assert.equal(policy.rules.length, 1, 'the policy document validates with the sidecar\'s policy schema');
  });

  test('the Dockerfile: node:20-slim, production dependencies only, runs agentmesh', () => {
    const text = readFileSync(join(DIR, 'Dockerfile'), 'utf8');
    const froms = [...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    assert.ok(froms.length > 0 && froms.every((f) => f === 'node:20-slim'), `FROM lines: ${froms.join(', ')}`);
    assert.match(text, /npm ci --omit=dev/);
    assert.match(text, /^ENTRYPOINT \["node", "\/app\/bin\/agentmesh\.mjs"\]$/m);
  });

  test('nats.conf with the output of `agentmesh nats config` is a valid nats-server config (cluster + JetStream + mTLS doors)', { skip: natsServerBinary() === undefined ? 'nats-server not installed' : false }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'agentmesh-k8s-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    await caInit({ trustDomain: 'mesh.local', dir: join(dir, 'ca') });
    const tls = await caIssue({ dir: join(dir, 'ca'), id: 'spiffe://mesh.local/nats', out: join(dir, 'tls') });
    const made = await runCli(['nats', 'config', '--trust-domain', 'mesh.local', '--agent', 'researcher', '--agent', 'planner',
      '--server-cert', tls.cert, '--server-key', tls.key, '--bundle', join(dir, 'tls/bundle.pem'), '--store-dir', join(dir, 'js')]);
    assert.equal(made.code, 0, made.stderr);
    writeFileSync(join(dir, 'nats.conf'), configData('nats-config', 'nats.conf'));
    writeFileSync(join(dir, 'generated-access.conf'), made.stdout);
    const conf = readFileSync(join(dir, 'nats.conf'), 'utf8').replace('./generated/access.conf', './generated-access.conf');
    writeFileSync(join(dir, 'nats.conf'), conf);
    const checked = spawnSync(natsServerBinary() ?? 'nats-server', ['-c', join(dir, 'nats.conf'), '-t'], { encoding: 'utf8', env: { ...process.env, POD_NAME: 'nats-0' }, timeout: 30_000 });
    assert.equal(checked.status, 0, `${checked.stdout}${checked.stderr}`);
  });

  test('docs/operations.md alerts name metrics the sidecar exports', async () => {
    const named = new Set([...readFileSync(join(ROOT, 'docs/operations.md'), 'utf8').matchAll(/\bagentmesh_[a-z_]+/g)]
      .map((m) => m[0].replace(/_bucket$/, '')));
    assert.ok(named.size >= 10, `alerts name ${named.size} metrics`);
    const exported = await createMetrics().registry.metrics();
    const sources = ['sidecar/metrics.ts', ...readdirSync(join(ROOT, 'sidecar/overload')).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')).map((f) => `sidecar/overload/${f}`)]
      .map((f) => readFileSync(join(ROOT, f), 'utf8')).join('\n');
    const unknown = [...named].filter((name) => !exported.includes(`# TYPE ${name} `) && !sources.includes(`'${name}'`));
    assert.deepEqual(unknown, []);
  });
});
