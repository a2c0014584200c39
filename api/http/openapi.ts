/**
 * OpenAPI 3.1 description of the api's routes. A test checks that every route the router serves is
 * described here and nothing else is, so this stays true as routes change.
 */
const error = { $ref: '#/components/responses/Error' };
const orderResponse = {
  description: 'the order',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Order' } } },
};
const orderId = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^ord_[0-9a-f]{32}$' } };
const statuses = ['PENDING', 'PROCESSING', 'PROCESSED', 'FAILED', 'REJECTED', 'CANCELLED'];

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Order processing API',
    version: '0.1.0',
    description: 'Accepts orders, stores them in MongoDB and processes them through a BullMQ worker fleet.',
  },
  paths: {
    '/orders': {
      post: {
        summary: 'Create an order',
        parameters: [
          {
            name: 'Idempotency-Key',
            in: 'header',
            required: false,
            description: '1–255 visible ASCII characters; the same key and body return the same order',
            schema: { type: 'string', minLength: 1, maxLength: 255 },
          },
        ],
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: '#/components/schemas/NewOrder' } } },
        },
        responses: {
          '201': { ...orderResponse, description: 'created; `Location` names it' },
          '200': {
            ...orderResponse,
            description: 'replay of an earlier request with the same key (`Idempotent-Replayed: true`)',
          },
          '202': { ...orderResponse, description: 'stored; the queue is away and the order will be enqueued later' },
          '400': error,
          '413': error,
          '415': error,
          '422': error,
          '503': error,
        },
      },
      get: {
        summary: 'List orders, newest first (keyset pagination)',
        parameters: [
          { name: 'status', in: 'query', schema: { type: 'string', enum: statuses } },
          { name: 'customerId', in: 'query', schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
          { name: 'cursor', in: 'query', schema: { type: 'string' }, description: '`nextCursor` of the previous page' },
        ],
        responses: {
          '200': {
            description: 'one page',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  properties: {
                    items: { type: 'array', items: { $ref: '#/components/schemas/Order' } },
                    nextCursor: { type: ['string', 'null'] },
                  },
                },
              },
            },
          },
          '400': error,
          '503': error,
        },
      },
    },
    '/orders/{id}': {
      get: {
        summary: 'Read an order',
        parameters: [orderId],
        responses: { '200': orderResponse, '404': error, '503': error },
      },
    },
    '/orders/{id}/cancel': {
      post: {
        summary: 'Cancel a PENDING or FAILED order',
        parameters: [orderId],
        responses: { '200': orderResponse, '404': error, '409': error, '503': error },
      },
    },
    '/dlq': {
      get: {
        summary: 'Dead orders (FAILED) with their failed job, newest failure first (admin key)',
        parameters: [
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
          { name: 'cursor', in: 'query', schema: { type: 'string' }, description: '`nextCursor` of the previous page' },
        ],
        responses: {
          '200': {
            description:
              'one page: `{ items: [{ order, job: { id, state, failedReason, attemptsMade, finishedOn, lastFrame } | null }], nextCursor }`',
          },
          '400': error,
          '401': error,
          '503': error,
        },
      },
    },
    '/dlq/reprocess': {
      post: {
        summary: 'Reprocess every dead order, or the listed ones, in bounded batches (admin key)',
        requestBody: {
          required: false,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  orderIds: { type: 'array', maxItems: 1000, items: { type: 'string', pattern: '^ord_[0-9a-f]{32}$' } },
                  reason: { type: 'string', maxLength: 200 },
                },
              },
            },
          },
        },
        responses: {
          '202': { description: '`{ reprocessed, skipped, notFound }`' },
          '400': error,
          '401': error,
          '503': error,
        },
      },
    },
    '/dlq/{orderId}/reprocess': {
      post: {
        summary: 'FAILED → PENDING, the job retried with its attempts reset (admin key; idempotent)',
        parameters: [{ ...orderId, name: 'orderId' }],
        requestBody: {
          required: false,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                additionalProperties: false,
                properties: { reason: { type: 'string', maxLength: 200 } },
              },
            },
          },
        },
        responses: { '202': orderResponse, '401': error, '404': error, '409': error, '503': error },
      },
    },
    '/metrics': {
      get: { summary: 'Prometheus metrics', responses: { '200': { description: 'Prometheus text format' } } },
    },
    '/health/live': {
      get: { summary: 'Liveness: the process is up', responses: { '200': { description: 'alive' } } },
    },
    '/health/ready': {
      get: {
        summary: 'Readiness: MongoDB answers; 503 while shutting down or when it does not',
        responses: { '200': { description: 'ready' }, '503': { description: 'not ready' } },
      },
    },
    '/openapi.json': {
      get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1 JSON' } } },
    },
  },
  security: [{ apiKey: [] }, {}],
  components: {
    securitySchemes: {
      apiKey: {
        type: 'http',
        scheme: 'bearer',
        description: 'An API key (API_KEYS); required when keys are configured, admin keys for /dlq',
      },
    },
    schemas: {
      Item: {
        type: 'object',
        additionalProperties: false,
        required: ['sku', 'quantity', 'unitPriceCents'],
        properties: {
          sku: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
          quantity: { type: 'integer', minimum: 1, maximum: 10000 },
          unitPriceCents: { type: 'integer', minimum: 0, maximum: 100000000 },
        },
      },
      NewOrder: {
        type: 'object',
        additionalProperties: false,
        required: ['customerId', 'items', 'currency'],
        properties: {
          customerId: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
          items: { type: 'array', minItems: 1, maxItems: 100, items: { $ref: '#/components/schemas/Item' } },
          currency: { type: 'string', pattern: '^[A-Z]{3}$' },
          metadata: {
            type: 'object',
            maxProperties: 20,
            propertyNames: { pattern: '^[^$.][^.]{0,39}$' },
            additionalProperties: { type: 'string', maxLength: 256 },
          },
        },
      },
      HistoryEntry: {
        type: 'object',
        required: ['status', 'at'],
        properties: {
          status: { type: 'string', enum: statuses },
          at: { type: 'string', format: 'date-time' },
          attempt: { type: 'integer' },
          reason: { type: 'string' },
        },
      },
      Order: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          status: { type: 'string', enum: statuses },
          customerId: { type: 'string' },
          items: { type: 'array', items: { $ref: '#/components/schemas/Item' } },
          totalCents: { type: 'integer' },
          currency: { type: 'string' },
          metadata: { type: 'object', additionalProperties: { type: 'string' } },
          attempts: { type: 'integer' },
          lastError: { type: ['string', 'null'] },
          history: { type: 'array', items: { $ref: '#/components/schemas/HistoryEntry' } },
          createdAt: { type: 'string', format: 'date-time' },
          updatedAt: { type: 'string', format: 'date-time' },
          processedAt: { type: ['string', 'null'], format: 'date-time' },
          failedAt: { type: ['string', 'null'], format: 'date-time' },
        },
      },
      Error: {
        type: 'object',
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message', 'requestId', 'details'],
            properties: {
              code: { type: 'string' },
              message: { type: 'string' },
              requestId: { type: 'string' },
              details: {
                type: 'array',
                items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } },
              },
            },
          },
        },
      },
    },
    responses: {
      Error: {
        description: 'an error (`{ error: { code, message, requestId, details } }`)',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      },
    },
  },
} as const;
