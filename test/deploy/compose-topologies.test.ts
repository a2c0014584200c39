import test from 'ava';
import { parse } from 'yaml';
import { loadConfig } from '#common';
import { repoFile } from './contract.js';

/**
 * deploy/compose/redis-{sentinel,cluster}.yml, laid over docker-compose.yml: every app service's
 * merged environment must load as exactly that topology, naming only services the files define.
 * (Compose merges `environment` key by key; an empty REDIS_URL counts as unset.)
 */

interface Service {
  environment?: Record<string, string>;
  command?: string[];
}
interface Compose {
  services: Record<string, Service>;
}

const APPS = ['api', 'worker', 'health'];

for (const [file, kind] of [
  ['deploy/compose/redis-sentinel.yml', 'sentinel'],
  ['deploy/compose/redis-cluster.yml', 'cluster'],
] as const) {
  test(`when ${file} is laid over docker-compose.yml, then every app loads a ${kind} topology of its services`, async (t) => {
    const base = parse(await repoFile('docker-compose.yml'), { merge: true }) as Compose;
    const overlay = parse(await repoFile(file), { merge: true }) as Compose;
    for (const app of APPS) {
      // `${NAME:-default}` as compose substitutes it with NAME unset.
      const merged = { ...base.services[app].environment, ...overlay.services[app].environment };
      const env = Object.fromEntries(
        Object.entries(merged).map(([k, v]) => [k, String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')]),
      );
      const config = loadConfig(env);
      t.is(config.redis.kind, kind, app);
      const nodes =
        config.redis.kind === 'sentinel'
          ? config.redis.sentinels
          : config.redis.kind === 'cluster'
            ? config.redis.nodes
            : [];
      t.true(nodes.length >= 3, `${app}: at least three nodes`);
      for (const node of nodes) t.truthy(overlay.services[node.host], `${app}: ${node.host} is a service of ${file}`);
      if (config.redis.kind === 'sentinel') {
        const sentinel = overlay.services[config.redis.sentinels[0].host].command?.join(' ') ?? '';
        t.regex(
          sentinel,
          new RegExp(`sentinel monitor ${config.redis.name} `),
          'the sentinels watch the master the apps name',
        );
      }
    }
  });
}
