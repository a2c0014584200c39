import { Writable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import type { Context } from 'koa';
import { AppError, ERROR_CODES, createLogger, type ErrorCode, type ErrorDetail } from '#common';
import { RETRY_AFTER_SECONDS, STATUS_BY_CODE, createErrorMiddleware } from '../../api/http/error-middleware.js';

interface ErrorBody {
  error: { code: string; message: string; requestId: string; details: ErrorDetail[] };
}

/** The parts of a Koa context the middleware touches, recorded for assertions. */
interface FakeContext {
  status: number;
  body: unknown;
  method: string;
  path: string;
  state: { requestId: string };
  headers: Record<string, string>;
  set(name: string, value: string): void;
}

function fakeContext(overrides: Partial<Pick<FakeContext, 'method' | 'path'>> = {}): FakeContext {
  return {
    status: 404,
    body: undefined,
    method: overrides.method ?? 'GET',
    path: overrides.path ?? '/orders',
    state: { requestId: 'req-123' },
    headers: {},
    set(name, value) {
      this.headers[name] = value;
    },
  };
}

const silent = createLogger({ service: 'test', level: 'silent' });

/** Runs the middleware with `next` throwing `thrown` and returns the context afterwards. */
async function runWithError(thrown: unknown, ctx = fakeContext()): Promise<FakeContext> {
  const middleware = createErrorMiddleware({ logger: silent });
  await middleware(ctx as unknown as Context, async () => {
    throw thrown;
  });
  return ctx;
}

function bodyOf(ctx: FakeContext): ErrorBody {
  return ctx.body as ErrorBody;
}

/** The shape of every error response (docs/design.md, "HTTP interface"). */
function assertErrorShape(t: ExecutionContext, ctx: FakeContext, code: ErrorCode, status: number): void {
  t.is(ctx.status, status);
  const body = bodyOf(ctx);
  t.deepEqual(Object.keys(body), ['error']);
  t.deepEqual(Object.keys(body.error).sort(), ['code', 'details', 'message', 'requestId']);
  t.is(body.error.code, code);
  t.is(typeof body.error.message, 'string');
  t.true(body.error.message.length > 0);
  t.is(body.error.requestId, 'req-123');
  t.true(Array.isArray(body.error.details));
}

// docs/design.md's codes, plus FORBIDDEN (403) for the dashboard's cross-site refusal and METHOD_NOT_ALLOWED (405) for the probes.
test('when the status table is read, then it maps every code to the status of docs/design.md', (t) => {
  t.deepEqual(
    { ...STATUS_BY_CODE },
    {
      VALIDATION_ERROR: 400,
      INVALID_JSON: 400,
      UNAUTHORIZED: 401,
      FORBIDDEN: 403,
      NOT_FOUND: 404,
      METHOD_NOT_ALLOWED: 405,
      INVALID_STATE: 409,
      PAYLOAD_TOO_LARGE: 413,
      UNSUPPORTED_MEDIA_TYPE: 415,
      IDEMPOTENCY_KEY_REUSED: 422,
      RATE_LIMITED: 429,
      SERVICE_UNAVAILABLE: 503,
      INTERNAL_ERROR: 500,
    },
  );
  t.deepEqual(Object.keys(STATUS_BY_CODE).sort(), [...ERROR_CODES].sort());
});

test('when next throws an AppError of each code, then the response has that code and its status', async (t) => {
  for (const code of ERROR_CODES) {
    const ctx = await runWithError(new AppError(code, `message for ${code}`));

    assertErrorShape(t, ctx, code, STATUS_BY_CODE[code]);
    t.is(bodyOf(ctx).error.message, `message for ${code}`);
  }
});

test('when an AppError carries details, then the body carries them unchanged', async (t) => {
  const details = [
    { field: 'items.0.quantity', message: 'must be a number' },
    { field: 'currency', message: 'bad currency' },
  ];

  const ctx = await runWithError(new AppError('VALIDATION_ERROR', 'the request is not valid', { details }));

  assertErrorShape(t, ctx, 'VALIDATION_ERROR', 400);
  t.deepEqual(bodyOf(ctx).error.details, details);
});

test('when an AppError has no details, then the body has an empty details array', async (t) => {
  const ctx = await runWithError(new AppError('INVALID_STATE', 'order is PROCESSED'));

  t.deepEqual(bodyOf(ctx).error.details, []);
});

test('when a 4xx error is thrown, then no Retry-After header is set', async (t) => {
  const ctx = await runWithError(new AppError('NOT_FOUND', 'no order'));

  t.deepEqual(ctx.headers, {});
});

// --- body-parser (co-body) errors ---------------------------------------------------------------

test('when the body parser reports entity.too.large, then the response is 413 PAYLOAD_TOO_LARGE', async (t) => {
  const err = Object.assign(new Error('request entity too large'), { status: 413, type: 'entity.too.large' });

  const ctx = await runWithError(err);

  assertErrorShape(t, ctx, 'PAYLOAD_TOO_LARGE', 413);
  t.deepEqual(
    bodyOf(ctx).error.details.map((d) => d.field),
    ['body'],
  );
});

test('when a plain object with status 413 is thrown, then the response is 413 PAYLOAD_TOO_LARGE', async (t) => {
  const ctx = await runWithError({ status: 413, type: 'entity.too.large' });

  assertErrorShape(t, ctx, 'PAYLOAD_TOO_LARGE', 413);
});

test('when the body parser reports entity.parse.failed, then the response is 400 INVALID_JSON', async (t) => {
  const ctx = await runWithError({ status: 400, type: 'entity.parse.failed' });

  assertErrorShape(t, ctx, 'INVALID_JSON', 400);
  t.deepEqual(
    bodyOf(ctx).error.details.map((d) => d.field),
    ['body'],
  );
});

test('when JSON.parse fails inside the body parser (status 400), then the response is 400 INVALID_JSON', async (t) => {
  const syntax = (() => {
    try {
      JSON.parse('{"a":');
    } catch (e) {
      return e as Error;
    }
    throw new Error('JSON.parse unexpectedly succeeded');
  })();
  const strictMode = new SyntaxError('invalid JSON, only supports object and array');

  for (const err of [syntax, strictMode]) {
    const ctx = await runWithError(Object.assign(err, { status: 400, body: '{"a":' }));
    assertErrorShape(t, ctx, 'INVALID_JSON', 400);
  }
});

// co-body parses with @hapi/bourne (protoAction 'error'): a body such as {"__proto__":{}} raises
// SyntaxError('Object contains forbidden prototype property') with status 400 and no `type`. toAppError
// only maps status 400 when the message matches /JSON|token/, so a client's bad body becomes a 500.
test('when the body parser rejects a __proto__ key (status 400), then the response is a 400', async (t) => {
  const err = Object.assign(new SyntaxError('Object contains forbidden prototype property'), {
    status: 400,
    body: '{"__proto__":{"x":1}}',
  });

  const ctx = await runWithError(err);

  t.is(ctx.status, 400);
  t.true(['INVALID_JSON', 'VALIDATION_ERROR'].includes(bodyOf(ctx).error.code));
});

test('when the body parser reports an unsupported encoding, then the response is 415', async (t) => {
  const ctx = await runWithError({ status: 415, type: 'encoding.unsupported' });

  assertErrorShape(t, ctx, 'UNSUPPORTED_MEDIA_TYPE', 415);
});

// --- unexpected errors --------------------------------------------------------------------------

test('when a plain Error is thrown, then the response is 500 INTERNAL_ERROR without message or stack', async (t) => {
  const err = new Error('secret internal detail');

  const ctx = await runWithError(err);

  assertErrorShape(t, ctx, 'INTERNAL_ERROR', 500);
  const serialized = JSON.stringify(ctx.body);
  t.false(serialized.includes('secret internal detail'));
  t.false(serialized.includes('stack'));
  t.false(serialized.includes('at '), 'no stack frame');
  t.false(serialized.includes(import.meta.url.replace('file://', '')), 'no file path');
  t.deepEqual(bodyOf(ctx).error.details, []);
});

test('when a non-Error value is thrown, then the response is 500 INTERNAL_ERROR', async (t) => {
  for (const thrown of ['boom', 42, null, undefined, { message: 'secret object' }]) {
    const ctx = await runWithError(thrown);
    assertErrorShape(t, ctx, 'INTERNAL_ERROR', 500);
    t.false(JSON.stringify(ctx.body).includes('secret object'));
  }
});

test('when an unexpected error is thrown, then it is logged at error level with its stack', async (t) => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString());
      callback();
    },
  });
  const logger = createLogger({ service: 'test', level: 'info', destination });
  const middleware = createErrorMiddleware({ logger });
  const ctx = fakeContext();

  await middleware(ctx as unknown as Context, async () => {
    throw new Error('secret internal detail');
  });

  t.is(lines.length, 1);
  const entry = JSON.parse(lines[0]) as { level: string; err: { message: string; stack: string } };
  t.is(entry.level, 'error');
  t.is(entry.err.message, 'secret internal detail');
  t.true(entry.err.stack.length > 0);
});

test('when a 4xx AppError is thrown, then nothing is logged', async (t) => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString());
      callback();
    },
  });
  const middleware = createErrorMiddleware({ logger: createLogger({ service: 'test', level: 'info', destination }) });

  await middleware(fakeContext() as unknown as Context, async () => {
    throw new AppError('VALIDATION_ERROR', 'bad');
  });

  t.deepEqual(lines, []);
});

// --- dependency outages -------------------------------------------------------------------------

test('when MongoDB cannot be selected, then the response is 503 SERVICE_UNAVAILABLE with Retry-After', async (t) => {
  const err = new Error('Server selection timed out after 1000 ms');
  err.name = 'MongoServerSelectionError';

  const ctx = await runWithError(err);

  assertErrorShape(t, ctx, 'SERVICE_UNAVAILABLE', 503);
  t.is(ctx.headers['Retry-After'], String(RETRY_AFTER_SECONDS));
  t.true(Number(ctx.headers['Retry-After']) > 0);
  t.false(JSON.stringify(ctx.body).includes('Server selection timed out'));
});

test('when other MongoDB outage errors are thrown, then each becomes 503 with Retry-After', async (t) => {
  const outages = [
    Object.assign(new Error('connection refused'), { name: 'MongoNetworkError' }),
    Object.assign(new Error('timed out'), { name: 'MongoNetworkTimeoutError' }),
    Object.assign(new Error('closed'), { name: 'MongoTopologyClosedError' }),
    Object.assign(new Error('operation timed out'), { name: 'MongoOperationTimeoutError' }),
    new Error('Cannot call `orders.insertOne()` before initial connection is complete'),
  ];

  for (const err of outages) {
    const ctx = await runWithError(err);
    assertErrorShape(t, ctx, 'SERVICE_UNAVAILABLE', 503);
    t.is(ctx.headers['Retry-After'], String(RETRY_AFTER_SECONDS), err.name);
  }
});

test('when a service throws SERVICE_UNAVAILABLE itself, then Retry-After is set too', async (t) => {
  const ctx = await runWithError(new AppError('SERVICE_UNAVAILABLE', 'queue away'));

  assertErrorShape(t, ctx, 'SERVICE_UNAVAILABLE', 503);
  t.is(ctx.headers['Retry-After'], String(RETRY_AFTER_SECONDS));
});

test('when a Mongo error that is not an outage is thrown, then the response is 500, not 503', async (t) => {
  const err = Object.assign(new Error('E11000 duplicate key'), { name: 'MongoServerError', code: 11000 });

  const ctx = await runWithError(err);

  assertErrorShape(t, ctx, 'INTERNAL_ERROR', 500);
  t.false('Retry-After' in ctx.headers);
});

// --- unmatched routes and success ---------------------------------------------------------------

test('when no route matches (status 404, no body), then the response is NOT_FOUND naming the path', async (t) => {
  const ctx = fakeContext({ method: 'DELETE', path: '/nowhere' });
  const middleware = createErrorMiddleware({ logger: silent });

  await middleware(ctx as unknown as Context, async () => {});

  assertErrorShape(t, ctx, 'NOT_FOUND', 404);
  t.regex(bodyOf(ctx).error.message, /DELETE \/nowhere/);
  t.deepEqual(bodyOf(ctx).error.details, []);
});

test('when a route answers normally, then status and body pass through untouched', async (t) => {
  const ctx = fakeContext();
  const middleware = createErrorMiddleware({ logger: silent });

  await middleware(ctx as unknown as Context, async () => {
    ctx.status = 201;
    ctx.body = { id: 'ord_1' };
  });

  t.is(ctx.status, 201);
  t.deepEqual(ctx.body, { id: 'ord_1' });
  t.deepEqual(ctx.headers, {});
});

test('when a route answers 404 with its own body, then that body is kept', async (t) => {
  const ctx = fakeContext();
  const middleware = createErrorMiddleware({ logger: silent });
  const own = { error: { code: 'NOT_FOUND', message: 'no order ord_x', requestId: 'req-123', details: [] } };

  await middleware(ctx as unknown as Context, async () => {
    ctx.status = 404;
    ctx.body = own;
  });

  t.is(ctx.status, 404);
  t.is(ctx.body, own);
});

test('when a __proto__ key sits in valid JSON, then the response is 400 VALIDATION_ERROR naming each place', async (t) => {
  const err = Object.assign(new SyntaxError('Object contains forbidden prototype property'), {
    status: 400,
    body: '{"items":[{"sku":"S","__proto__":{}}],"metadata":{"__proto__":"x"},"__proto__":1}',
  });
  const ctx = await runWithError(err);
  assertErrorShape(t, ctx, 'VALIDATION_ERROR', 400);
  t.deepEqual(
    bodyOf(ctx)
      .error.details.map((d) => d.field)
      .sort(),
    ['__proto__', 'items.0.__proto__', 'metadata.__proto__'],
  );
});

test('when inflating the body fails (zlib or brotli), then the response is 400, not 500', async (t) => {
  for (const code of ['Z_DATA_ERROR', 'Z_BUF_ERROR', 'ERR__ERROR_FORMAT_PADDING_1']) {
    const ctx = await runWithError(Object.assign(new Error('incorrect header check'), { code, errno: -3 }));
    assertErrorShape(t, ctx, 'INVALID_JSON', 400);
    t.is(bodyOf(ctx).error.details[0]?.field, 'Content-Encoding', code);
  }
});

test('when an error quotes 8 KiB of the request, then message and details carry at most 200 characters of it', async (t) => {
  const long = 'x'.repeat(8192);
  const ctx = await runWithError(
    new AppError('VALIDATION_ERROR', `bad ${long}`, { details: [{ field: long, message: long }] }),
  );
  const { error } = bodyOf(ctx);
  t.true(error.message.length <= 200);
  t.true(error.details[0].field.length <= 200 && error.details[0].message.length <= 200);
});
