import test from 'ava';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { call } from '../helpers/api-http.js';

/** Served by terminus on the api's server (api/main.ts), so no router holds them. */
const TERMINUS_PROBES = ['get /health/live', 'get /health/ready'];
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<
    string,
    Record<string, { responses?: Record<string, unknown>; parameters?: Array<{ name: string; in: string }> }>
  >;
  components: Record<string, Record<string, unknown>>;
}

let api: TestApi;
let doc: OpenApiDocument;

test.before(async () => {
  api = await startTestApi('api_openapi');
  const res = await call<OpenApiDocument>(api, 'GET', '/openapi.json');
  if (res.status !== 200) throw new Error(`setup: GET /openapi.json answered ${res.status}`);
  doc = res.body;
});

test.after.always(async () => {
  await api?.close();
});

/** `method path` of every route the container's routers serve (HEAD is Koa's automatic twin of GET). */
function servedRoutes(): string[] {
  const routes = new Set<string>();
  for (const router of api.container.routers) {
    for (const layer of router.stack) {
      if (typeof layer.path !== 'string') continue;
      const path = layer.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      for (const method of layer.methods) {
        if (method !== 'HEAD') routes.add(`${method.toLowerCase()} ${path}`);
      }
    }
  }
  return [...routes].sort();
}

function documentedRoutes(): string[] {
  return Object.entries(doc.paths)
    .flatMap(([path, item]) =>
      Object.keys(item)
        .filter((k) => HTTP_METHODS.includes(k))
        .map((m) => `${m} ${path}`),
    )
    .sort();
}

test('when GET /openapi.json is read, then it is an OpenAPI 3.1.0 JSON document', async (t) => {
  const res = await call<OpenApiDocument>(api, 'GET', '/openapi.json');
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /^application\/json/);
  t.is(res.body.openapi, '3.1.0');
  t.is(typeof res.body.info.title, 'string');
  t.is(typeof res.body.info.version, 'string');
  t.truthy(res.headers.get('x-request-id'));
});

test('when the routers are listed, then every served route is described in the document', (t) => {
  const served = servedRoutes();
  t.true(served.length > 0, 'the routers serve routes');
  const documented = new Set(documentedRoutes());
  const missing = served.filter((r) => !documented.has(r));
  t.deepEqual(missing, [], 'served but not described');
});

test('when the document is listed, then every described route is served by a router or is a terminus probe', (t) => {
  const served = new Set(servedRoutes());
  const extra = documentedRoutes().filter((r) => !served.has(r) && !TERMINUS_PROBES.includes(r));
  t.deepEqual(extra, [], 'described but not served');
});

test('when the document is read, then the core order routes of docs/design.md are among its paths', (t) => {
  const documented = new Set(documentedRoutes());
  for (const route of [
    'post /orders',
    'get /orders',
    'get /orders/{id}',
    'post /orders/{id}/cancel',
    'get /metrics',
    'get /openapi.json',
    ...TERMINUS_PROBES,
  ]) {
    t.true(documented.has(route), route);
  }
});

test('when an operation has a path template, then it declares each template parameter as a path parameter', (t) => {
  for (const [path, item] of Object.entries(doc.paths)) {
    const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    for (const [method, operation] of Object.entries(item)) {
      if (!HTTP_METHODS.includes(method)) continue;
      const declared = (operation.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
      t.deepEqual(declared.sort(), [...names].sort(), `${method} ${path}`);
      t.true(Object.keys(operation.responses ?? {}).length > 0, `${method} ${path} has responses`);
    }
  }
});

test('when the document references a component, then that component exists', (t) => {
  const refs = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node !== null && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === '$ref' && typeof value === 'string') refs.add(value);
        else walk(value);
      }
    }
  };
  walk(doc);
  t.true(refs.size > 0);
  for (const ref of refs) {
    t.true(ref.startsWith('#/'), ref);
    const target = ref
      .slice(2)
      .split('/')
      .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], doc);
    t.truthy(target, `${ref} resolves`);
  }
});

test('when the operations are listed, then each has its own operationId and at least one tag', (t) => {
  const ids: string[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (!HTTP_METHODS.includes(method)) continue;
      const { operationId, tags } = operation as { operationId?: string; tags?: string[] };
      t.regex(operationId ?? '', /^[a-z][A-Za-z]+$/, `${method} ${path}`);
      t.true((tags ?? []).length > 0, `${method} ${path} has a tag`);
      ids.push(operationId ?? '');
    }
  }
  t.is(new Set(ids).size, ids.length, 'operationIds are unique');
});

test('when a rate-limited route answers, then the headers it sends are the ones its response documents', async (t) => {
  const res = await call(api, 'GET', '/orders');
  t.is(res.status, 200);
  const documented = doc.paths['/orders'].get.responses?.['200'] as { headers: Record<string, unknown> };
  for (const header of ['X-Request-Id', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset']) {
    t.truthy(res.headers.get(header), `${header} sent`);
    t.truthy(documented.headers[header], `${header} documented`);
  }
  const responses = doc.paths['/orders'].get.responses ?? {};
  t.truthy(responses['429'], 'the 429 it can send is documented');
  t.truthy(responses['401'], 'the 401 it can send is documented');
});
