import { execFile } from 'node:child_process';
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

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }>;
}

interface PolicyPeer {
  namespaceSelector?: LabelSelector;
  podSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}

interface PolicyRule {
  from?: PolicyPeer[];
  to?: PolicyPeer[];
  ports?: Array<{ protocol?: string; port?: number; endPort?: number }>;
}

interface NetworkPolicySpec {
  podSelector: LabelSelector;
  policyTypes: string[];
  ingress?: PolicyRule[];
  egress?: PolicyRule[];
}

/** Kubernetes' label-selector semantics (an empty selector selects everything). */
function selects(selector: LabelSelector, labels: Record<string, string>): boolean {
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpressions = (selector.matchExpressions ?? []).every((e) => {
    switch (e.operator) {
      case 'In':
        return e.key in labels && (e.values ?? []).includes(labels[e.key]);
      case 'NotIn':
        return !(e.key in labels) || !(e.values ?? []).includes(labels[e.key]);
      case 'Exists':
        return e.key in labels;
      case 'DoesNotExist':
        return !(e.key in labels);
    }
  });
  return byLabels && byExpressions;
}

async function networkPolicies(): Promise<Array<{ name: string; spec: NetworkPolicySpec }>> {
  return (await applied())
    .filter((m) => m.kind === 'NetworkPolicy')
    .map((m) => ({ name: m.metadata.name, spec: m.spec as unknown as NetworkPolicySpec }));
}

/** The rules of `direction` that apply to the pods of a Deployment, from every policy selecting them. */
async function rulesFor(deployment: string, direction: 'ingress' | 'egress'): Promise<PolicyRule[]> {
  const labels = template(find(await applied(), 'Deployment', deployment)).metadata.labels;
  return (await networkPolicies())
    .filter((p) => selects(p.spec.podSelector, labels))
    .flatMap((p) => p.spec[direction] ?? []);
}

const portsOf = (rules: PolicyRule[]) =>
  new Set(
    rules.flatMap((r) =>
      (r.ports ?? []).map((p) => `${p.protocol ?? 'TCP'}/${p.port}${p.endPort ? `-${p.endPort}` : ''}`),
    ),
  );

const PROMETHEUS_PEER: PolicyPeer = {
  namespaceSelector: { matchLabels: { 'network.order-fleet/monitoring': 'true' } },
  podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
};
const INGRESS_PEER: PolicyPeer = { namespaceSelector: { matchLabels: { 'network.order-fleet/ingress': 'true' } } };

test('when the network policies apply, then everything is denied unless a policy allows it', async (t) => {
  const deny = (await networkPolicies()).find((p) => p.name === 'default-deny');
  t.truthy(deny);
  t.deepEqual(deny!.spec.podSelector, {}, 'every pod of the namespace');
  t.deepEqual([...deny!.spec.policyTypes].sort(), ['Egress', 'Ingress']);
  t.is(deny!.spec.ingress, undefined);
  t.is(deny!.spec.egress, undefined);
  for (const policy of await networkPolicies()) {
    for (const rule of [...(policy.spec.ingress ?? []), ...(policy.spec.egress ?? [])]) {
      t.true(
        (rule.from ?? rule.to ?? []).length > 0,
        `${policy.name}: every rule names its peers (none allows everyone)`,
      );
      t.true((rule.ports ?? []).length > 0, `${policy.name}: every rule names its ports`);
    }
  }
});

test('when traffic comes in, then the api takes it on its port from the ingress namespace and Prometheus, workers and health only from Prometheus', async (t) => {
  const config = loadConfig(await podEnv());
  const expected = {
    api: { port: config.apiPort, peers: [INGRESS_PEER, PROMETHEUS_PEER] },
    worker: { port: config.workerMetricsPort, peers: [PROMETHEUS_PEER] },
    health: { port: config.healthPort, peers: [PROMETHEUS_PEER] },
  };
  for (const name of DEPLOYMENTS) {
    const rules = await rulesFor(name, 'ingress');
    t.true(rules.length > 0, `${name}: some ingress is allowed`);
    t.deepEqual([...portsOf(rules)], [`TCP/${expected[name].port}`], `${name}: only its own port`);
    const ports = container(find(await applied(), 'Deployment', name)).ports?.map((p) => p.containerPort);
    t.true(ports?.includes(expected[name].port), `${name}: the port is the container's`);
    t.deepEqual(
      rules.flatMap((r) => r.from ?? []),
      expected[name].peers,
      `${name}: only from ${expected[name].peers.length === 1 ? 'Prometheus' : 'the ingress namespace and Prometheus'}`,
    );
  }
});

test('when a pod connects out, then only DNS, MongoDB, Redis (Sentinel and Cluster ports too), telemetry and public HTTPS are allowed', async (t) => {
  for (const name of DEPLOYMENTS) {
    const ports = portsOf(await rulesFor(name, 'egress'));
    for (const port of ['UDP/53', 'TCP/53', 'TCP/27017', 'TCP/6379', 'TCP/26379', 'TCP/7000-7005']) {
      t.true(ports.has(port), `${name}: egress to ${port}`);
    }
    // HTTPS out: the payment provider and the webhooks (worker), the JWT key set (api); not health.
    t.is(ports.has('TCP/443'), name !== 'health', `${name}: public HTTPS`);
    t.deepEqual(
      [...ports].filter(
        (p) =>
          ![
            'UDP/53',
            'TCP/53',
            'TCP/27017',
            'TCP/6379',
            'TCP/26379',
            'TCP/7000-7005',
            'TCP/4318',
            'TCP/4040',
            'TCP/443',
          ].includes(p),
      ),
      [],
      `${name}: nothing else`,
    );
  }
  const https = (await rulesFor('worker', 'egress')).find((r) => r.ports?.some((p) => p.port === 443));
  const v4 = https?.to?.find((peer) => peer.ipBlock?.cidr === '0.0.0.0/0')?.ipBlock;
  t.truthy(v4, 'webhooks go to any public address');
  for (const range of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16']) {
    t.true(v4!.except?.includes(range), `private range ${range} excluded`);
  }
  const dns = (await rulesFor('api', 'egress')).find((r) => r.ports?.some((p) => p.port === 53));
  t.deepEqual(dns?.to?.[0].podSelector, { matchLabels: { 'k8s-app': 'kube-dns' } }, 'DNS only to the cluster DNS');
});

/** `kustomize build <dir>` (kustomize, or kubectl's built-in); fails the test when neither is installed. */
function kustomizeBuild(dir: string): Promise<string> {
  const run = (cmd: string, args: string[]) =>
    new Promise<string>((resolve, reject) =>
      execFile(cmd, args, { cwd: REPO_ROOT, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
        err ? reject(Object.assign(err, { stderr })) : resolve(stdout),
      ),
    );
  return run('kustomize', ['build', dir]).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
    return run('kubectl', ['kustomize', dir]).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') throw new Error('kustomize or kubectl is needed to render deploy/k8s (install either)');
      throw e;
    });
  });
}

test('when kustomize renders the base and the VPA overlay, then every object lands in the namespace, VPAs only with the overlay', async (t) => {
  const render = async (dir: string) =>
    parseAllDocuments(await kustomizeBuild(dir)).map(
      (d) => d.toJS() as Manifest & { metadata: { namespace?: string } },
    );
  const base = await render(DIR);
  const withVpa = await render('deploy/k8s-with-vpa');
  const kinds = (objects: Manifest[]) => [...new Set(objects.map((o) => o.kind))].sort();
  t.true(kinds(base).includes('NetworkPolicy'));
  t.false(kinds(base).includes('VerticalPodAutoscaler'), 'the VPAs are optional');
  t.deepEqual(kinds(withVpa), [...kinds(base), 'VerticalPodAutoscaler'].sort());
  for (const o of withVpa.filter((x) => x.kind !== 'Namespace')) {
    t.is(o.metadata.namespace, 'order-fleet', `${o.kind}/${o.metadata.name}`);
  }
  t.is(withVpa.length, base.length + DEPLOYMENTS.length);
});

test('when the optional VPAs are read, then each recommends for one Deployment and never applies it (no fight with HPA or KEDA)', async (t) => {
  const component = parse(await repoFile(join(DIR, 'components/vpa/kustomization.yaml'))) as {
    kind: string;
    resources: string[];
  };
  t.is(component.kind, 'Component');
  const vpas = (await Promise.all(component.resources.map((f) => loadFile(join('components/vpa', f))))).flat();
  const all = await applied();
  t.deepEqual(vpas.map((v) => v.metadata.name).sort(), [...DEPLOYMENTS].sort());
  for (const vpa of vpas) {
    t.is(vpa.apiVersion, 'autoscaling.k8s.io/v1');
    t.is(vpa.kind, 'VerticalPodAutoscaler');
    const spec = vpa.spec as {
      targetRef: { apiVersion: string; kind: string; name: string };
      updatePolicy: { updateMode: string };
      resourcePolicy: { containerPolicies: Array<{ containerName: string }> };
    };
    t.deepEqual([spec.targetRef.apiVersion, spec.targetRef.kind], ['apps/v1', 'Deployment']);
    const deployment = find(all, 'Deployment', spec.targetRef.name);
    t.is(spec.updatePolicy.updateMode, 'Off', `${vpa.metadata.name}: recommendation only`);
    t.deepEqual(
      spec.resourcePolicy.containerPolicies.map((p) => p.containerName),
      [container(deployment).name],
    );
  }
});
