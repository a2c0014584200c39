import test from 'ava';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig, ORDERS_QUEUE } from '#common';
import { repoFile } from './contract.js';

/**
 * deploy/k8s-topologies (Sentinel, Cluster) checked against the code without a cluster: the base
 * ConfigMap with each overlay's JSON patches applied must be a valid configuration naming exactly that
 * topology, and the KEDA trigger must read the wait list of the queue prefix the processes will use.
 */

interface PatchOp {
  readonly op: 'add' | 'replace';
  readonly path: string;
  readonly value: unknown;
}

interface Overlay {
  readonly resources: string[];
  readonly patches: Array<{ target: { kind: string; name: string }; patch: string }>;
  readonly replacements: Array<{ source: { fieldPath: string }; targets: Array<{ fieldPaths: string[] }> }>;
}

async function baseConfigMap(): Promise<Record<string, string>> {
  const docs = parseAllDocuments(await repoFile('deploy/k8s/configmap.yaml')).map(
    (d) => d.toJS() as { kind: string; data: Record<string, string> },
  );
  return { ...docs.find((d) => d.kind === 'ConfigMap')!.data };
}

function opsFor(overlay: Overlay, kind: string): PatchOp[] {
  return overlay.patches.filter((p) => p.target.kind === kind).flatMap((p) => parse(p.patch) as PatchOp[]);
}

for (const [name, kind, triggerType] of [
  ['redis-sentinel', 'sentinel', 'redis-sentinel'],
  ['redis-cluster', 'cluster', 'redis-cluster'],
] as const) {
  test(`when the ${name} overlay is applied, then the processes load a ${kind} topology and KEDA reads its queue's wait list`, async (t) => {
    const overlay = parse(await repoFile(`deploy/k8s-topologies/${name}/kustomization.yaml`)) as Overlay;
    t.deepEqual(overlay.resources, ['../../k8s'], 'built on the base manifests');

    const data = await baseConfigMap();
    for (const op of opsFor(overlay, 'ConfigMap')) {
      t.true(op.path.startsWith('/data/'), op.path);
      data[op.path.slice('/data/'.length)] = String(op.value);
    }
    // The Secret of the overlay carries MONGO_URL and REDIS_PASSWORD, no REDIS_URL (one topology).
    const config = loadConfig({ ...data, MONGO_URL: 'mongodb://db.example:27017/orders', API_AUTH: 'off' });
    t.is(config.redis.kind, kind);

    const trigger = opsFor(overlay, 'ScaledObject').find((op) => op.path === '/spec/triggers/0')?.value as {
      type: string;
      metadata: Record<string, string>;
    };
    t.is(trigger.type, triggerType);
    t.is(trigger.metadata.listName, `${config.queuePrefix}:${ORDERS_QUEUE}:wait`);
    const nodes =
      config.redis.kind === 'sentinel'
        ? config.redis.sentinels
        : config.redis.kind === 'cluster'
          ? config.redis.nodes
          : [];
    t.is(trigger.metadata.addresses, nodes.map((n) => `${n.host}:${n.port}`).join(','), 'KEDA asks the same nodes');
    if (config.redis.kind === 'sentinel') t.is(trigger.metadata.sentinelMaster, config.redis.name);
    // listName keeps following QUEUE_PREFIX after the overlay's own patch.
    t.deepEqual(
      overlay.replacements.map((r) => [r.source.fieldPath, r.targets[0].fieldPaths[0]]),
      [['data.QUEUE_PREFIX', 'spec.triggers.0.metadata.listName']],
    );
  });
}
