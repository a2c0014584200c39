import {
  ERROR_CODES,
  HISTORY_LIMIT,
  PROFILE_SECONDS,
  profileQuerySchema,
  IDEMPOTENCY_KEY,
  OPERATOR_NAME_PATTERN,
  ORDER_STATUSES,
  REASON_LIMIT,
  REJECTION_REASONS,
  STEP_NAMES,
} from '#common';
import { PAUSABLE_QUEUES } from '../services/processing-service.js';
import { auditQuerySchema, processingChangeSchema } from './admin-schemas.js';
import { dlqListQuerySchema, reprocessManySchema, reprocessOneQuerySchema, reprocessOneSchema } from './dlq-schemas.js';
import { setStockSchema, skuParamSchema } from './inventory-router.js';
import { toOpenApiSchema, toQueryParameters, type JsonSchema } from './joi-openapi.js';
import { cursorSchema, listOrdersQuerySchema, newOrderSchema, orderIdSchema } from './order-schemas.js';

/**
 * OpenAPI 3.1 description of the api's routes. The request schemas (bodies and query parameters) are
 * generated from the joi schemas the routers validate with, so the two cannot drift; the rest is written
 * here. Tests check that every served route is described and nothing else is, that the generated
 * schemas accept exactly what the api accepts, and `npm run lint` runs Spectral (oas + OWASP) and
 * Redocly over it (`.spectral.yaml` and `.redocly.lint-ignore.yaml` record the warnings left and why).
 *
 * Over 250 lines because it is one declarative document (a data literal, read top to bottom like the
 * served JSON); the only logic, the joi translation, lives in joi-openapi.ts.
 */
const ref = (kind: 'schemas' | 'responses' | 'headers' | 'parameters', name: string) => ({
  $ref: `#/components/${kind}/${name}`,
});
const json = (schema: object) => ({ 'application/json': { schema } });

/** Headers on every response Koa sends. */
const BASE_HEADERS = {
  'X-Request-Id': ref('headers', 'X-Request-Id'),
  'Access-Control-Allow-Origin': ref('headers', 'Access-Control-Allow-Origin'),
};
/** Headers on a response that passed the rate limiter (every route but the probes and /metrics). */
const LIMITED_HEADERS = {
  ...BASE_HEADERS,
  'RateLimit-Limit': ref('headers', 'RateLimit-Limit'),
  'RateLimit-Remaining': ref('headers', 'RateLimit-Remaining'),
  'RateLimit-Reset': ref('headers', 'RateLimit-Reset'),
};

const ok = (description: string, schema?: object, headers: object = {}) => ({
  description,
  headers: { ...LIMITED_HEADERS, ...headers },
  ...(schema ? { content: json(schema) } : {}),
});
const orderOk = (description: string, headers: object = {}) => ok(description, ref('schemas', 'Order'), headers);

/** The error responses a route can send, by status. */
const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [String(status), ref('responses', ERROR_RESPONSES[status])]));
const ERROR_RESPONSES: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  404: 'NotFound',
  409: 'Conflict',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
  422: 'IdempotencyKeyReused',
  405: 'MethodNotAllowed',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};

const orderIdParameter = (name: string) => ({
  name,
  in: 'path',
  required: true,
  description: 'an order id (`ord_` and 32 hex digits); anything else is a 404',
  schema: ref('schemas', 'OrderId'),
});
const skuParameter = {
  name: 'sku',
  in: 'path',
  required: true,
  description: 'the SKU, as an order item names it',
  schema: (toOpenApiSchema(skuParamSchema).properties as Record<string, JsonSchema>).sku,
};
const cursorDescriptions = { cursor: '`nextCursor` of the previous page', limit: 'page size' };
const dlqQueueDescription = {
  queue: '`orders` (dead orders, the default) or `notifications` (undeliverable webhooks)',
};
const optionalBody = (schema: Record<string, unknown>) => ({
  required: false,
  description: 'optional: no body, or a JSON object',
  content: json(schema),
});

const errorSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      additionalProperties: false,
      required: ['code', 'message', 'requestId', 'details'],
      properties: {
        code: { type: 'string', enum: [...ERROR_CODES] },
        message: { type: 'string' },
        requestId: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$', maxLength: 128 },
        details: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['field', 'message'],
            properties: { field: { type: 'string' }, message: { type: 'string' } },
          },
        },
      },
    },
  },
};

const dateTime = { type: 'string', format: 'date-time', maxLength: 30 };
const nullableDateTime = { type: ['string', 'null'], format: 'date-time', maxLength: 30 };
const count = { type: 'integer', format: 'int32', minimum: 0, maximum: 2 ** 31 - 1 };
const stockCount = { type: 'integer', format: 'int64', minimum: 0, maximum: Number.MAX_SAFE_INTEGER };

const newOrder = toOpenApiSchema(newOrderSchema);
/** `nextCursor`: a cursor as the query takes it, or null on the last page. */
const nextCursor = { ...toOpenApiSchema(cursorSchema), type: ['string', 'null'] };
const newOrderProperties = newOrder.properties as Record<string, JsonSchema>;

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Order processing API',
    version: '0.1.0',
    description:
      'Accepts orders, stores them in MongoDB and processes them through a BullMQ worker fleet (docs/design.md). ' +
      'String lengths count UTF-16 code units, as JavaScript does; patterns are ECMAScript regular expressions ' +
      'matched without the `u` flag.',
    contact: { name: 'order-fleet maintainers (README.md)' },
  },
  servers: [
    {
      url: '/',
      description: 'the api that serves this document, local or production alike (TLS ends in front of it)',
      'x-internal': false,
    },
  ],
  tags: [
    { name: 'orders', description: 'create, read, list and cancel orders' },
    {
      name: 'dead letters',
      description: 'orders whose processing failed for good, and bringing them back (admin key)',
    },
    {
      name: 'inventory',
      description: 'stock on hand per SKU, as the order workflow reserves and sells it (admin key)',
    },
    {
      name: 'operators',
      description: "pause and resume processing, and the audit of operators' actions (admin key)",
    },
    { name: 'system', description: 'probes, metrics and this document' },
    { name: 'profiling', description: 'CPU profiles and heap snapshots of the api process on demand (admin key)' },
  ],
  paths: {
    '/orders': {
      post: {
        operationId: 'createOrder',
        tags: ['orders'],
        summary: 'Create an order',
        description:
          'Stores the order and queues it for processing. With an `Idempotency-Key` the same key and body ' +
          'return the same order (200, `Idempotent-Replayed: true`); the same key with another body is a 422.',
        parameters: [
          {
            name: 'Idempotency-Key',
            in: 'header',
            required: false,
            description: '1–255 visible ASCII characters, scoped to the caller',
            schema: { type: 'string', pattern: IDEMPOTENCY_KEY.source, minLength: 1, maxLength: 255 },
          },
        ],
        requestBody: { required: true, content: json(ref('schemas', 'NewOrder')) },
        responses: {
          '201': orderOk('created; `Location` names it', { Location: ref('headers', 'Location') }),
          '200': orderOk('replay of an earlier request with the same key and body', {
            'Idempotent-Replayed': ref('headers', 'Idempotent-Replayed'),
          }),
          '202': orderOk('stored; the queue is away and the order is enqueued later', {
            Location: ref('headers', 'Location'),
          }),
          ...errors(400, 401, 413, 415, 422, 429, 500, 503),
        },
      },
      get: {
        operationId: 'listOrders',
        tags: ['orders'],
        summary: 'List orders, newest first',
        description: "The caller's orders, newest first, in pages (keyset pagination through `nextCursor`).",
        parameters: toQueryParameters(listOrdersQuerySchema, cursorDescriptions),
        responses: {
          '200': ok('one page', ref('schemas', 'OrderPage')),
          ...errors(400, 401, 429, 500, 503),
        },
      },
    },
    '/orders/{id}': {
      get: {
        operationId: 'getOrder',
        tags: ['orders'],
        summary: 'Read an order',
        description: "One of the caller's orders; another caller's order is a 404, as an unknown one is.",
        parameters: [orderIdParameter('id')],
        responses: { '200': orderOk('the order'), ...errors(401, 404, 429, 500, 503) },
      },
    },
    '/orders/{id}/cancel': {
      post: {
        operationId: 'cancelOrder',
        tags: ['orders'],
        summary: 'Cancel a PENDING or FAILED order',
        description: 'PENDING or FAILED → CANCELLED (terminal); any other status is a 409 `INVALID_STATE`.',
        parameters: [orderIdParameter('id')],
        responses: { '200': orderOk('the cancelled order'), ...errors(401, 404, 409, 429, 500, 503) },
      },
    },
    '/dlq': {
      get: {
        operationId: 'listDeadOrders',
        tags: ['dead letters'],
        summary: 'List dead orders (or undeliverable webhooks), newest failure first',
        description:
          'FAILED orders with their failed job (null when the job was cleaned away). With `queue=notifications`: ' +
          'the newest `limit` failed webhook deliveries and their `total` (no cursor). Needs an admin key.',
        parameters: toQueryParameters(dlqListQuerySchema, { ...cursorDescriptions, ...dlqQueueDescription }),
        responses: {
          '200': ok('one page', {
            oneOf: [ref('schemas', 'DeadOrderPage'), ref('schemas', 'DeadNotificationPage')],
          }),
          ...errors(400, 401, 429, 500, 503),
        },
      },
    },
    '/dlq/reprocess': {
      post: {
        operationId: 'reprocessDeadOrders',
        tags: ['dead letters'],
        summary: 'Reprocess every dead order, the listed ones, or those matching filters',
        description:
          'Brings dead orders back in bounded batches; each counts as reprocessed, skipped or not found. ' +
          'With `queue: "notifications"` (no `orderIds`): every failed webhook delivery is retried, attempts reset. ' +
          'Any of `customerId`, `failedReason`, `failedFrom`, `failedTo`, `dryRun`, `limit` makes it a filtered ' +
          'replay: at most `limit` matches (default 100) per request, `remaining` says how many still match; ' +
          'with `dryRun` the answer is a 200 with the count and a sample, and nothing changes. The operator ' +
          "(`operator`, else the API client) and `reason` go into each order's history (`by`, `reason`).",
        requestBody: optionalBody(ref('schemas', 'ReprocessMany')),
        responses: {
          '200': ok('a dry run: what would be replayed', ref('schemas', 'ReplayDryRun')),
          '202': ok('the tally', ref('schemas', 'ReprocessResult')),
          ...errors(400, 401, 413, 415, 429, 500, 503),
        },
      },
    },
    '/dlq/{orderId}/reprocess': {
      post: {
        operationId: 'reprocessDeadOrder',
        tags: ['dead letters'],
        summary: 'Reprocess one dead order',
        description:
          'FAILED → PENDING, its job retried with attempts reset. Idempotent; needs an admin key. With ' +
          '`queue=notifications` the id is a failed webhook job id (`webhook-id`, `<orderId>-<status>`): ' +
          'it is retried with attempts reset and the job as it was is answered; a job not failed is a 409.',
        parameters: [
          {
            name: 'orderId',
            in: 'path',
            required: true,
            description: 'the order id, or with `queue=notifications` the webhook job id',
            schema: { type: 'string', pattern: '^[\\w-]{1,100}$', maxLength: 100 },
          },
          ...toQueryParameters(reprocessOneQuerySchema, dlqQueueDescription),
        ],
        requestBody: optionalBody(ref('schemas', 'ReprocessOne')),
        responses: {
          '202': ok('the order, PENDING again; or the retried notification', {
            oneOf: [ref('schemas', 'Order'), ref('schemas', 'DeadNotification')],
          }),
          ...errors(400, 401, 404, 409, 413, 415, 429, 500, 503),
        },
      },
    },
    '/admin/processing': {
      get: {
        operationId: 'getProcessing',
        tags: ['operators'],
        summary: 'Whether processing is paused',
        description: 'Whether each queue (orders, notifications) is paused fleet-wide. Needs an admin key.',
        responses: {
          '200': ok('the state of each queue', ref('schemas', 'ProcessingStatus')),
          ...errors(401, 429, 500, 503),
        },
      },
    },
    ...Object.fromEntries(
      (['pause', 'resume'] as const).map((verb) => [
        `/admin/processing/${verb}`,
        {
          post: {
            operationId: `${verb}Processing`,
            tags: ['operators'],
            summary: verb === 'pause' ? 'Pause processing fleet-wide' : 'Resume processing fleet-wide',
            description:
              (verb === 'pause'
                ? 'Every worker stops taking new jobs of the queue (jobs running finish); new orders are still ' +
                  'taken and wait. Readiness stays 200: a pause is deliberate, shown in the health details and ' +
                  'the `queue_paused` gauge. '
                : 'Workers take the waiting jobs again. ') +
              'Recorded in the log and the audit with the operator and reason. Needs an admin key.',
            requestBody: optionalBody(ref('schemas', 'ProcessingChange')),
            responses: {
              '200': ok('the queue and its new state', ref('schemas', 'ProcessingState')),
              ...errors(400, 401, 413, 415, 429, 500, 503),
            },
          },
        },
      ]),
    ),
    '/admin/audit': {
      get: {
        operationId: 'listAuditEvents',
        tags: ['operators'],
        summary: "The audit of operators' actions, newest first",
        description:
          'Dashboard actions and refusals, pauses and resumes: who, when, which queue and job, and how it ' +
          'ended. Kept `AUDIT_RETENTION_DAYS`. Needs an admin key.',
        parameters: toQueryParameters(auditQuerySchema, {
          ...cursorDescriptions,
          actor: "only this operator's records",
          action: 'only this action, e.g. `board.retry` or `processing.pause`',
        }),
        responses: {
          '200': ok('one page', ref('schemas', 'AuditPage')),
          ...errors(400, 401, 429, 500, 503),
        },
      },
    },
    '/inventory/{sku}': {
      put: {
        operationId: 'setStock',
        tags: ['inventory'],
        summary: 'Set the stock on hand of a SKU',
        description:
          '`available` becomes the stock on hand; `reserved` and `sold` are left as they are. Creates the ' +
          "SKU's inventory document when missing (a SKU without one is untracked: always available). Needs an admin key.",
        parameters: [skuParameter],
        requestBody: { required: true, content: json(ref('schemas', 'SetStock')) },
        responses: {
          '200': ok('the stock level after the change', ref('schemas', 'StockLevel')),
          ...errors(400, 401, 413, 415, 429, 500, 503),
        },
      },
      get: {
        operationId: 'getStock',
        tags: ['inventory'],
        summary: 'Read the stock level of a SKU',
        description: 'Available, reserved (held by orders in flight) and sold. Needs an admin key.',
        parameters: [skuParameter],
        responses: {
          '200': ok('the stock level', ref('schemas', 'StockLevel')),
          ...errors(401, 404, 429, 500, 503),
        },
      },
    },
    '/admin/profile': {
      post: {
        operationId: 'recordProfile',
        tags: ['profiling'],
        summary: 'Record a CPU profile or take a heap snapshot of this api process',
        description:
          `\`kind=cpu\`: V8's sampling profiler runs for \`seconds\` (${PROFILE_SECONDS.min}–${PROFILE_SECONDS.max}, ` +
          `default ${PROFILE_SECONDS.default}) and the \`.cpuprofile\` is returned (Chrome DevTools, speedscope). ` +
          '`kind=heap`: a `.heapsnapshot` is taken at once (the process pauses while V8 writes it). One at a time ' +
          'per process: 409 while one is being recorded; 413 when the result is larger than `PROFILE_MAX_MB`. ' +
          'The answer is the one process that served the request (behind a load balancer, any replica). Needs an admin key.',
        parameters: toQueryParameters(profileQuerySchema),
        responses: {
          '200': ok(
            'the profile, as a download',
            { type: 'object', description: 'a V8 CPU profile or heap snapshot (JSON)' },
            { 'Content-Disposition': ref('headers', 'Content-Disposition') },
          ),
          ...errors(400, 401, 409, 413, 429, 500),
        },
      },
    },
    '/metrics': {
      get: {
        operationId: 'getMetrics',
        tags: ['system'],
        summary: 'Prometheus metrics',
        description: 'The api process metrics in Prometheus text format. Open and not rate limited (scrapers).',
        responses: {
          '200': {
            description: 'Prometheus text format',
            headers: BASE_HEADERS,
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
          ...errors(500),
        },
      },
    },
    '/health/live': {
      get: {
        operationId: 'getLiveness',
        tags: ['system'],
        summary: 'Liveness: the process is up',
        description: 'Open and not rate limited; computed for each request; GET and HEAD only.',
        responses: {
          '200': { description: 'alive', headers: BASE_HEADERS, content: json(ref('schemas', 'Probe')) },
          ...errors(405),
        },
      },
    },
    '/health/ready': {
      get: {
        operationId: 'getReadiness',
        tags: ['system'],
        summary: 'Readiness: MongoDB answers',
        description:
          '503 while shutting down or when MongoDB does not answer; computed for each request; GET and HEAD only.',
        responses: {
          '200': { description: 'ready', headers: BASE_HEADERS, content: json(ref('schemas', 'Probe')) },
          '503': { description: 'not ready', headers: BASE_HEADERS, content: json(ref('schemas', 'Probe')) },
          ...errors(405),
        },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'getOpenApiDocument',
        tags: ['system'],
        summary: 'This document',
        description: 'Open (no key needed) but rate limited like the API routes.',
        responses: { '200': ok('OpenAPI 3.1 JSON', { type: 'object' }), ...errors(429, 500) },
      },
    },
  },
  security: [{ apiKey: [] }, {}],
  components: {
    securitySchemes: {
      apiKey: {
        type: 'http',
        scheme: 'bearer',
        description: 'An API key (API_KEYS); required when keys are configured, an admin key for /dlq',
      },
    },
    headers: {
      'X-Request-Id': {
        description: "the request's id: the caller's well-formed `X-Request-Id`, else generated",
        schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$', maxLength: 128 },
      },
      'Access-Control-Allow-Origin': {
        description: "the request's `Origin`, only when it is one of CORS_ORIGINS (CORS is off by default)",
        schema: { type: 'string', format: 'uri', maxLength: 2048 },
      },
      'RateLimit-Limit': {
        description: 'requests allowed per minute (RATE_LIMIT_PER_MINUTE); absent when rate limiting is off',
        schema: { type: 'integer', format: 'int32', minimum: 1, maximum: 1_000_000 },
      },
      'RateLimit-Remaining': {
        description: 'requests left in the current minute',
        schema: { type: 'integer', format: 'int32', minimum: 0, maximum: 1_000_000 },
      },
      'RateLimit-Reset': {
        description: 'seconds until the budget is full again',
        schema: { type: 'integer', format: 'int32', minimum: 0, maximum: 60 },
      },
      'Retry-After': {
        description: 'seconds to wait before trying again',
        schema: { type: 'integer', format: 'int32', minimum: 1, maximum: 60 },
      },
      'Content-Disposition': {
        description: '`attachment; filename="<service>-<pid>-<time>.cpuprofile"` (or `.heapsnapshot`)',
        schema: { type: 'string', maxLength: 200, pattern: '^attachment; filename="[A-Za-z0-9.-]+"$' },
      },
      'WWW-Authenticate': {
        description: '`Bearer realm="orders"` when the key is missing or unknown',
        schema: { type: 'string', const: 'Bearer realm="orders"' },
      },
      Location: {
        description: 'the order: `/orders/{id}`',
        schema: { type: 'string', pattern: '^/orders/ord_[0-9a-f]{32}$', maxLength: 44 },
      },
      'Idempotent-Replayed': {
        description: '`true` on a replay',
        schema: { type: 'string', const: 'true' },
      },
    },
    schemas: {
      NewOrder: {
        ...newOrder,
        properties: { ...newOrderProperties, items: { ...newOrderProperties.items, items: ref('schemas', 'Item') } },
      },
      Item: (newOrderProperties.items as { items: JsonSchema }).items,
      ProcessingChange: toOpenApiSchema(processingChangeSchema),
      ProcessingState: {
        type: 'object',
        additionalProperties: false,
        required: ['queue', 'paused'],
        properties: { queue: { type: 'string', enum: [...PAUSABLE_QUEUES] }, paused: { type: 'boolean' } },
      },
      ProcessingStatus: {
        type: 'object',
        additionalProperties: false,
        required: [...PAUSABLE_QUEUES],
        properties: Object.fromEntries(
          PAUSABLE_QUEUES.map((q) => [
            q,
            {
              type: 'object',
              additionalProperties: false,
              required: ['paused'],
              properties: { paused: { type: 'boolean' } },
            },
          ]),
        ),
      },
      AuditEvent: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'at', 'actor', 'role', 'source', 'action', 'outcome'],
        properties: {
          id: { type: 'string', pattern: '^[0-9a-f]{24}$', maxLength: 24 },
          at: dateTime,
          actor: { type: 'string', maxLength: 128, description: 'the operator (account name, or API client)' },
          role: { type: 'string', enum: ['operator', 'viewer', 'admin'] },
          source: { type: 'string', enum: ['board', 'api'] },
          action: { type: 'string', maxLength: 64, description: 'e.g. `board.retry`, `processing.pause`' },
          queue: { type: 'string', maxLength: 64 },
          jobId: { type: 'string', maxLength: 200 },
          path: { type: 'string', maxLength: 2048, description: 'a board call as it came: method and path' },
          outcome: { type: 'string', enum: ['done', 'refused', 'failed'] },
          status: { type: 'integer', format: 'int32', minimum: 100, maximum: 599 },
          reason: { type: 'string', maxLength: 200 },
          requestId: { type: 'string', maxLength: 128 },
        },
      },
      AuditPage: {
        type: 'object',
        additionalProperties: false,
        required: ['items', 'nextCursor'],
        properties: {
          items: { type: 'array', maxItems: 100, items: ref('schemas', 'AuditEvent') },
          nextCursor: { type: ['string', 'null'], pattern: '^[0-9a-f]{24}$', maxLength: 24 },
        },
      },
      ReprocessMany: toOpenApiSchema(reprocessManySchema),
      ReprocessOne: toOpenApiSchema(reprocessOneSchema),
      OrderId: toOpenApiSchema(orderIdSchema),
      Status: { type: 'string', enum: [...ORDER_STATUSES] },
      HistoryEntry: {
        type: 'object',
        additionalProperties: false,
        required: ['status', 'at'],
        properties: {
          status: ref('schemas', 'Status'),
          at: dateTime,
          attempt: { ...count, minimum: 1, description: "the job's attempt in its current series (claims only)" },
          reason: { type: 'string', maxLength: REASON_LIMIT },
          by: {
            type: 'string',
            pattern: OPERATOR_NAME_PATTERN.source,
            maxLength: 64,
            description: 'the operator who asked for the move (a reprocess, a dashboard retry)',
          },
          step: { ...ref('schemas', 'StepName'), description: 'set on a workflow entry: the step done or undone' },
          action: { type: 'string', enum: ['done', 'compensated'] },
          ref: ref('schemas', 'ProviderRef'),
        },
      },
      ProviderRef: {
        type: 'string',
        pattern: '^[\\x21-\\x7e]{1,200}$',
        maxLength: 200,
        description: "the payment provider's reference of an effect (the charge id)",
      },
      StepName: { type: 'string', enum: [...STEP_NAMES] },
      StepCheckpoint: {
        type: 'object',
        additionalProperties: false,
        required: ['status', 'at'],
        properties: {
          status: { type: 'string', enum: ['done', 'compensated'] },
          at: dateTime,
          ref: ref('schemas', 'ProviderRef'),
        },
      },
      SetStock: toOpenApiSchema(setStockSchema),
      StockLevel: {
        type: 'object',
        additionalProperties: false,
        required: ['sku', 'available', 'reserved', 'sold'],
        properties: {
          sku: skuParameter.schema,
          available: { ...stockCount, description: 'on hand, free to reserve' },
          reserved: { ...stockCount, description: 'held by orders in flight' },
          sold: { ...stockCount, description: 'confirmed sales' },
        },
      },
      Order: {
        type: 'object',
        additionalProperties: false,
        required: [
          'id',
          'status',
          'customerId',
          'items',
          'totalCents',
          'currency',
          'priority',
          'scheduledFor',
          'attempts',
          'lastError',
          'history',
          'createdAt',
          'updatedAt',
          'processedAt',
          'failedAt',
          'steps',
          'rejectionReason',
        ],
        properties: {
          id: ref('schemas', 'OrderId'),
          status: ref('schemas', 'Status'),
          customerId: newOrderProperties.customerId,
          items: { ...newOrderProperties.items, items: ref('schemas', 'Item') },
          totalCents: {
            type: 'integer',
            format: 'int64',
            minimum: 0,
            maximum: Number.MAX_SAFE_INTEGER,
            description: 'computed by the server: the sum of quantity × unitPriceCents',
          },
          currency: newOrderProperties.currency,
          metadata: newOrderProperties.metadata,
          priority: newOrderProperties.priority,
          scheduledFor: {
            ...nullableDateTime,
            description: 'the notBefore the order was sent with: not processed before it; null when none',
          },
          attempts: { ...count, description: 'attempts started (claims) so far' },
          lastError: { type: ['string', 'null'], maxLength: REASON_LIMIT },
          history: {
            type: 'array',
            maxItems: HISTORY_LIMIT,
            description: `the latest ${HISTORY_LIMIT} transitions, oldest first`,
            items: ref('schemas', 'HistoryEntry'),
          },
          createdAt: dateTime,
          updatedAt: dateTime,
          processedAt: nullableDateTime,
          failedAt: nullableDateTime,
          steps: {
            type: 'object',
            additionalProperties: false,
            description: "the workflow's checkpoints: a step is there once its effect was done (or undone)",
            properties: Object.fromEntries(STEP_NAMES.map((name) => [name, ref('schemas', 'StepCheckpoint')])),
          },
          rejectionReason: {
            type: ['string', 'null'],
            enum: [...REJECTION_REASONS, null],
            description: 'why a REJECTED order was refused; null otherwise',
          },
        },
      },
      OrderPage: {
        type: 'object',
        additionalProperties: false,
        required: ['items', 'nextCursor'],
        properties: {
          items: { type: 'array', maxItems: 100, items: ref('schemas', 'Order') },
          nextCursor,
        },
      },
      DeadJob: {
        type: ['object', 'null'],
        additionalProperties: false,
        description: 'the failed BullMQ job; null when it was cleaned away, or Redis is away',
        required: ['id', 'state', 'failedReason', 'attemptsMade', 'finishedOn', 'lastFrame'],
        properties: {
          id: ref('schemas', 'OrderId'),
          state: { type: 'string', description: "BullMQ's job state, `failed` unless it moved since" },
          failedReason: { type: ['string', 'null'] },
          attemptsMade: count,
          finishedOn: {
            type: ['integer', 'null'],
            format: 'int64',
            minimum: 0,
            maximum: Number.MAX_SAFE_INTEGER,
            description: 'epoch milliseconds',
          },
          lastFrame: { type: ['string', 'null'], description: 'the top frame of the last stack trace' },
        },
      },
      DeadOrderPage: {
        type: 'object',
        additionalProperties: false,
        required: ['items', 'nextCursor'],
        properties: {
          items: {
            type: 'array',
            maxItems: 100,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['order', 'job'],
              properties: { order: ref('schemas', 'Order'), job: ref('schemas', 'DeadJob') },
            },
          },
          nextCursor,
        },
      },
      DeadNotification: {
        type: 'object',
        additionalProperties: false,
        description: 'a failed webhook delivery (a job of the `notifications` queue)',
        required: ['id', 'type', 'orderId', 'failedReason', 'attemptsMade', 'finishedOn'],
        properties: {
          id: { type: 'string', maxLength: 100, description: 'the job id and `webhook-id`: `<orderId>-<status>`' },
          type: { type: ['string', 'null'], maxLength: 50, description: 'the event type, e.g. `order.processed`' },
          orderId: { type: ['string', 'null'], maxLength: 100 },
          failedReason: { type: ['string', 'null'] },
          attemptsMade: count,
          finishedOn: {
            type: ['integer', 'null'],
            format: 'int64',
            minimum: 0,
            maximum: Number.MAX_SAFE_INTEGER,
            description: 'epoch milliseconds of the last failure',
          },
        },
      },
      DeadNotificationPage: {
        type: 'object',
        additionalProperties: false,
        required: ['items', 'nextCursor', 'total'],
        properties: {
          items: { type: 'array', maxItems: 100, items: ref('schemas', 'DeadNotification') },
          nextCursor: { type: 'null', description: 'always null: the page is the newest `limit` failures' },
          total: { ...count, description: 'failed deliveries in all' },
        },
      },
      ReprocessResult: {
        type: 'object',
        additionalProperties: false,
        required: ['reprocessed', 'skipped', 'notFound'],
        properties: {
          reprocessed: count,
          skipped: count,
          notFound: count,
          dryRun: { type: 'boolean', const: false, description: 'present (false) on a filtered replay' },
          remaining: { ...count, description: 'a filtered replay: dead letters that still match after this batch' },
        },
      },
      ReplayDryRun: {
        type: 'object',
        additionalProperties: false,
        required: ['dryRun', 'matched', 'sample'],
        properties: {
          dryRun: { type: 'boolean', const: true },
          matched: { ...count, description: 'dead letters that match the filters' },
          sample: {
            type: 'array',
            maxItems: 20,
            description: 'the first matches, newest failure first (at most `limit`, at most 20)',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['id', 'orderId', 'customerId', 'failedAt', 'failedReason'],
              properties: {
                id: { type: 'string', maxLength: 100, description: 'the order id, or the webhook job id' },
                orderId: { type: ['string', 'null'], maxLength: 100 },
                customerId: { type: ['string', 'null'], maxLength: 64 },
                failedAt: nullableDateTime,
                failedReason: { type: ['string', 'null'] },
              },
            },
          },
        },
      },
      Probe: {
        type: 'object',
        description: "the probe's own report: `status` and, for readiness, its check's result",
        properties: { status: { type: 'string', enum: ['ok', 'error', 'shutting_down'] } },
      },
      Error: errorSchema,
    },
    responses: {
      BadRequest: errorResponse('`VALIDATION_ERROR` (details name each field) or `INVALID_JSON`'),
      Unauthorized: errorResponse(
        '`UNAUTHORIZED`: no valid key (`WWW-Authenticate` set; decided before the rate limiter, so no ' +
          '`RateLimit-*`), or a key without admin rights on an admin route',
        { 'WWW-Authenticate': ref('headers', 'WWW-Authenticate') },
      ),
      NotFound: errorResponse('`NOT_FOUND`'),
      MethodNotAllowed: errorResponse('`METHOD_NOT_ALLOWED`: the probes answer GET and HEAD only', {
        Allow: { description: 'the methods the path answers', schema: { type: 'string', const: 'GET, HEAD' } },
      }),
      Conflict: errorResponse('`INVALID_STATE`: the order is not in a status this move starts from'),
      PayloadTooLarge: errorResponse('`PAYLOAD_TOO_LARGE`: the body is over BODY_LIMIT'),
      UnsupportedMediaType: errorResponse('`UNSUPPORTED_MEDIA_TYPE`: the body is not `application/json`'),
      IdempotencyKeyReused: errorResponse('`IDEMPOTENCY_KEY_REUSED`: the key was used with another body'),
      TooManyRequests: errorResponse('`RATE_LIMITED`: the budget of the minute is spent', {
        'Retry-After': ref('headers', 'Retry-After'),
      }),
      InternalError: {
        description: '`INTERNAL_ERROR` (never a stack trace)',
        headers: BASE_HEADERS,
        content: json(ref('schemas', 'Error')),
      },
      ServiceUnavailable: {
        description:
          '`SERVICE_UNAVAILABLE`: MongoDB is not reachable (or, on POST /orders, more orders wait for it than `INTAKE_MAX_WAITING`); retry after `Retry-After`',
        headers: { ...BASE_HEADERS, 'Retry-After': ref('headers', 'Retry-After') },
        content: json(ref('schemas', 'Error')),
      },
    },
  },
};

function errorResponse(description: string, headers: object = {}) {
  return { description, headers: { ...LIMITED_HEADERS, ...headers }, content: json(ref('schemas', 'Error')) };
}
