import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { parseAllDocuments, parse } from 'yaml';
import { loadConfig, ORDERS_QUEUE } from '#common';
import { REPO_ROOT } from '../../scripts/lib/process-runner.js';
import { defaults, repoFile, schemaNames } from './contract.js';

/** deploy/k8s checked against the code: ports, probe paths, grace periods, names. No cluster needed. */

const DIR = 'deploy/k8s';

interface Probe {
  httpGet?: { path: string; port: number | string };
  tcpSocket?: { port: number | string };
  exec?: { command: string[] };
  timeoutSeconds?: number;
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
  };
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: Probe };
}

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  // Shapes differ by kind; each test narrows what it reads.
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

interface PodTemplate {
  metadata: { labels: Record<string, string> };
  spec: {
    terminationGracePeriodSeconds?: number;
    securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
    containers: Container[];
  };
}

async function loadFile(file: string): Promise<Manifest[]> {
  const docs = parseAllDocuments(await repoFile(join(DIR, file)));
  return docs.map((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`${file} document ${i}: ${doc.errors[0].message}`);
    return doc.toJS() as Manifest;
  });
}

async function yamlFiles(): Promise<string[]> {
  return (await readdir(join(REPO_ROOT, DIR))).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();
}

/** What `kubectl apply -k` applies: the kustomization's resources. */
async function applied(): Promise<Manifest[]> {
  const kustomization = parse(await repoFile(join(DIR, 'kustomization.yaml'))) as { resources: string[] };
  return (await Promise.all(kustomization.resources.map(loadFile))).flat();
}

function find(manifests: Manifest[], kind: string, name: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in ${DIR}`);
  return found;
}

function template(deployment: Manifest): PodTemplate {
  return (deployment.spec as { template: PodTemplate }).template;
}

function container(deployment: Manifest): Container {
  const containers = template(deployment).spec.containers;
  if (containers.length !== 1) throw new Error(`${deployment.metadata.name}: expected one container`);
  return containers[0];
}

/** The container port a probe targets (named ports resolved). */
function probePort(c: Container, probe: Probe): number {
  const port = probe.httpGet?.port ?? probe.tcpSocket?.port;
  if (typeof port === 'number') return port;
  const named = c.ports?.find((p) => p.name === port);
  if (!named) throw new Error(`${c.name}: probe port ${String(port)} is not a declared port`);
  return named.containerPort;
}

async function configMap(): Promise<Record<string, string>> {
  return find(await applied(), 'ConfigMap', 'orders-config').data ?? {};
}

/** The environment a pod gets: the ConfigMap and the example Secret's placeholders. */
async function podEnv(): Promise<Record<string, string>> {
  const secret = find(await loadFile('secret.example.yaml'), 'Secret', 'orders-secrets');
  return { ...(await configMap()), ...(secret.stringData ?? {}) };
}

const DEPLOYMENTS = ['api', 'worker', 'health'] as const;

test('when every manifest is parsed, then each is a well-formed Kubernetes object and the kustomization lists them', async (t) => {
  const files = await yamlFiles();
  const kustomization = parse(await repoFile(join(DIR, 'kustomization.yaml'))) as {
    kind: string;
    resources: string[];
  };
  t.is(kustomization.kind, 'Kustomization');
  for (const file of files.filter((f) => f !== 'kustomization.yaml')) {
    const manifests = await loadFile(file);
    t.true(manifests.length > 0, `${file} has documents`);
    for (const m of manifests) {
      t.truthy(m.apiVersion, `${file}: apiVersion`);
      t.truthy(m.kind, `${file}: kind`);
      t.truthy(m.metadata?.name, `${file}: metadata.name`);
    }
  }
  // Everything is applied but the example Secret (real secrets come from the operator's store).
  t.deepEqual(
    [...kustomization.resources].sort(),
    files.filter((f) => f !== 'kustomization.yaml' && f !== 'secret.example.yaml'),
  );
});

test('when the ConfigMap and Secret are read, then every key is a config variable the code accepts', async (t) => {
  const names = await schemaNames();
  const env = await podEnv();
  for (const key of Object.keys(env)) t.true(names.has(key), `${key} is not in the config schema`);
  t.notThrows(() => loadConfig(env));
  const all = await applied();
  for (const name of DEPLOYMENTS) {
    const refs = container(find(all, 'Deployment', name)).envFrom ?? [];
    t.true(
      refs.some((r) => r.configMapRef?.name === 'orders-config'),
      `${name} reads the ConfigMap`,
    );
    t.true(
      refs.some((r) => r.secretRef?.name === 'orders-secrets'),
      `${name} reads the Secret`,
    );
  }
});

test('when the pods start, then each runs its compiled entry point from the image', async (t) => {
  const all = await applied();
  for (const name of DEPLOYMENTS) {
    const c = container(find(all, 'Deployment', name));
    t.is(c.command?.[0], 'node');
    t.is(c.command?.at(-1), `dist/${name}/main.js`);
    t.true(existsSync(join(REPO_ROOT, `dist/${name}/main.js`)));
    t.regex(c.image, /^order-fleet:/, 'the kustomization sets the image');
  }
});

test('when the api is probed, then liveness and readiness hit its own terminus endpoints on its port', async (t) => {
  const config = loadConfig(await podEnv());
  t.is(config.apiPort, defaults().apiPort);
  const c = container(find(await applied(), 'Deployment', 'api'));
  t.is(c.livenessProbe?.httpGet?.path, '/health/live');
  t.is(probePort(c, c.livenessProbe!), config.apiPort);
  t.is(c.readinessProbe?.httpGet?.path, '/health/ready');
  t.is(probePort(c, c.readinessProbe!), config.apiPort);
  t.is(c.startupProbe?.httpGet?.path, '/health/live');
  t.is(probePort(c, c.startupProbe!), config.apiPort);
  // The readiness check pings MongoDB within HEALTH_TIMEOUT_MS: the probe must wait longer.
  t.true((c.readinessProbe?.timeoutSeconds ?? 1) * 1000 > config.healthTimeoutMs);
});

test('when the health process is probed, then its endpoints on its port are used', async (t) => {
  const config = loadConfig(await podEnv());
  t.is(config.healthPort, defaults().healthPort);
  const c = container(find(await applied(), 'Deployment', 'health'));
  t.is(c.livenessProbe?.httpGet?.path, '/health/live');
  t.is(probePort(c, c.livenessProbe!), config.healthPort);
  t.is(c.readinessProbe?.httpGet?.path, '/health/ready');
  t.is(probePort(c, c.readinessProbe!), config.healthPort);
  t.truthy(c.startupProbe);
  t.true((c.readinessProbe?.timeoutSeconds ?? 1) * 1000 > config.healthTimeoutMs);
});

test('when a worker is probed, then only its own metrics port is asked and it gets no readiness probe', async (t) => {
  const config = loadConfig(await podEnv());
  const c = container(find(await applied(), 'Deployment', 'worker'));
  for (const probe of [c.livenessProbe, c.startupProbe]) {
    t.truthy(probe);
    t.is(probePort(c, probe!), config.workerMetricsPort);
    if (probe?.httpGet) t.is(probe.httpGet.path, '/metrics');
  }
  t.is(c.readinessProbe, undefined);
});

test('when any liveness or startup probe is read, then none points at a dependency check', async (t) => {
  for (const m of (await applied()).filter((x) => x.kind === 'Deployment')) {
    for (const c of template(m).spec.containers) {
      t.truthy(c.livenessProbe, `${m.metadata.name} has a liveness probe`);
      for (const probe of [c.livenessProbe, c.startupProbe]) {
        const path = probe?.httpGet?.path;
        t.false(path === '/health/ready' || path === '/health', `${m.metadata.name}: ${path} checks dependencies`);
      }
    }
  }
});

test('when a pod is terminated, then its grace period exceeds the shutdown bound and the preStop delay', async (t) => {
  const { shutdownTimeoutMs } = loadConfig(await podEnv());
  for (const name of DEPLOYMENTS) {
    const deployment = find(await applied(), 'Deployment', name);
    const preStop = container(deployment).lifecycle?.preStop?.exec?.command ?? [];
    const preStopMs = preStop[0] === 'sleep' ? Number(preStop[1]) * 1000 : 0;
    const graceMs = (template(deployment).spec.terminationGracePeriodSeconds ?? 30) * 1000;
    t.true(graceMs > shutdownTimeoutMs + preStopMs, `${name}: ${graceMs} ms <= ${shutdownTimeoutMs} + ${preStopMs}`);
  }
  const apiPreStop = container(find(await applied(), 'Deployment', 'api')).lifecycle?.preStop?.exec?.command;
  t.is(apiPreStop?.[0], 'sleep', 'the api delays its shutdown until its endpoint is removed');
  t.true(Number(apiPreStop?.[1]) > 0);
});

test('when pods run, then they are non-root with a read-only root filesystem and bounded resources', async (t) => {
  for (const name of DEPLOYMENTS) {
    const pod = template(find(await applied(), 'Deployment', name)).spec;
    t.true(pod.securityContext?.runAsNonRoot, `${name}: runAsNonRoot`);
    t.not(pod.securityContext?.runAsUser, 0);
    const c = pod.containers[0];
    t.true(c.securityContext?.readOnlyRootFilesystem, `${name}: readOnlyRootFilesystem`);
    t.false(c.securityContext?.allowPrivilegeEscalation, `${name}: no privilege escalation`);
    t.deepEqual(c.securityContext?.capabilities?.drop, ['ALL']);
    t.truthy(c.resources?.requests?.cpu, `${name}: cpu request`);
    t.truthy(c.resources?.requests?.memory, `${name}: memory request`);
    t.truthy(c.resources?.limits?.memory, `${name}: memory limit`);
  }
});

test('when Services route traffic, then they select the right pods on declared ports', async (t) => {
  const all = await applied();
  for (const name of ['api', 'health']) {
    const service = find(all, 'Service', name).spec as {
      selector: Record<string, string>;
      ports: Array<{ targetPort: string | number }>;
    };
    const deployment = find(all, 'Deployment', name);
    const labels = template(deployment).metadata.labels;
    for (const [k, v] of Object.entries(service.selector)) t.is(labels[k], v, `${name}: selector ${k}`);
    const c = container(deployment);
    for (const { targetPort } of service.ports) {
      t.true(
        (c.ports ?? []).some((p) => p.name === targetPort || p.containerPort === targetPort),
        `${name}: targetPort ${targetPort} is declared`,
      );
    }
  }
});

test('when the api is busy, then an HPA scales its Deployment on CPU', async (t) => {
  const spec = find(await applied(), 'HorizontalPodAutoscaler', 'api').spec as {
    scaleTargetRef: { kind: string; name: string };
    minReplicas: number;
    metrics: Array<{ type: string; resource?: { name: string } }>;
  };
  t.deepEqual([spec.scaleTargetRef.kind, spec.scaleTargetRef.name], ['Deployment', 'api']);
  t.true(spec.minReplicas >= 2, 'at least two api pods');
  t.true(spec.metrics.some((m) => m.type === 'Resource' && m.resource?.name === 'cpu'));
});

test('when the queue backs up, then KEDA scales the worker Deployment on the BullMQ wait list', async (t) => {
  const all = await applied();
  const spec = find(all, 'ScaledObject', 'worker').spec as {
    scaleTargetRef: { name: string; kind?: string };
    minReplicaCount: number;
    triggers: Array<{ type: string; metadata: Record<string, string>; authenticationRef?: { name: string } }>;
  };
  t.is(spec.scaleTargetRef.name, find(all, 'Deployment', 'worker').metadata.name);
  t.is(spec.scaleTargetRef.kind ?? 'Deployment', 'Deployment');
  t.true(spec.minReplicaCount >= 1, 'the reconciler runs in the workers: never scale to zero');
  const redis = spec.triggers.find((tr) => tr.type === 'redis');
  t.truthy(redis);
  const { queuePrefix } = loadConfig(await podEnv());
  t.is(ORDERS_QUEUE, 'orders');
  t.is(redis!.metadata.listName, `${queuePrefix}:${ORDERS_QUEUE}:wait`);
  t.true(Number(redis!.metadata.listLength) > 0);

  // The authentication it names exists and reads keys the example Secret defines.
  const auth = find(all, 'TriggerAuthentication', redis!.authenticationRef!.name).spec as {
    secretTargetRef: Array<{ parameter: string; name: string; key: string }>;
  };
  t.true(auth.secretTargetRef.some((r) => r.parameter === 'address'));
  const secrets = await loadFile('secret.example.yaml');
  for (const ref of auth.secretTargetRef) {
    t.true(ref.key in (find(secrets, 'Secret', ref.name).stringData ?? {}), `${ref.name}/${ref.key}`);
  }
});
