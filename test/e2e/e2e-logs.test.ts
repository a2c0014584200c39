import { createHash, randomBytes } from 'node:crypto';
import test from 'ava';
import type { OrderView } from '#common';
import { orderBody, parseLine, requestJson, startTestFleet, waitFor } from '../helpers/fleet.js';

/**
 * One order followed through the JSON log lines of the real processes by its correlation id: the
 * api's access line (requestId) and the worker's job line (correlationId = that request id). With
 * authentication and Bull Board configured, no line of any process may hold a key, a password or an
 * Authorization header value.
 */
test.serial(
  "when an order is posted with X-Request-Id, then the api's access line and the worker's job line carry that id, and no line holds a secret",
  async (t) => {
    const apiKey = `key-${randomBytes(18).toString('hex')}`;
    const boardUser = `board-${randomBytes(4).toString('hex')}`;
    const boardPassword = `pw-${randomBytes(12).toString('hex')}`;
    const sha256 = createHash('sha256').update(apiKey).digest('hex');
    const fleet = await startTestFleet(t, {
      label: 'e2e_logs',
      workers: 1,
      env: {
        API_KEYS: `logs-client:${sha256}:admin`,
        BULL_BOARD_USER: boardUser,
        BULL_BOARD_PASSWORD: boardPassword,
        PROCESSING_DELAY_MS: '0',
      },
    });
    const requestId = `corr-${randomBytes(8).toString('hex')}`;
    const bearer = `Bearer ${apiKey}`;
    const basic = `Basic ${Buffer.from(`${boardUser}:${boardPassword}`).toString('base64')}`;

    // Act: the order, with the key; then requests that carry credentials the logs must not keep.
    const created = await requestJson<OrderView>(`${fleet.apiUrl}/orders`, {
      method: 'POST',
      body: orderBody(1),
      headers: { authorization: bearer, 'x-request-id': requestId },
    });
    t.is(created.status, 201, JSON.stringify(created.body));
    t.is(created.headers.get('x-request-id'), requestId);
    const orderId = created.body.id;
    const wrongKey = `Bearer key-${randomBytes(18).toString('hex')}`;
    t.is(
      (await requestJson(`${fleet.apiUrl}/orders/${orderId}`, { headers: { authorization: wrongKey } })).status,
      401,
    );
    t.is((await requestJson(`${fleet.apiUrl}/admin/queues`, { headers: { authorization: basic } })).status, 200);
    const wrongBasic = `Basic ${Buffer.from(`${boardUser}:${boardPassword}x`).toString('base64')}`;
    t.is((await requestJson(`${fleet.apiUrl}/admin/queues`, { headers: { authorization: wrongBasic } })).status, 401);

    await waitFor(`order ${orderId} PROCESSED`, async () => {
      const res = await requestJson<OrderView>(`${fleet.apiUrl}/orders/${orderId}`, {
        headers: { authorization: bearer },
      });
      return res.body.status === 'PROCESSED' ? true : undefined;
    });
    const worker = fleet.workers[0];
    await worker.waitForLine(new RegExp(`"correlationId":"${requestId}".*"msg":"job done"`), 10_000);
    await fleet.api!.waitForLine(new RegExp(`"requestId":"${requestId}".*"msg":"request"`), 10_000);

    // The api: one access line for the request, with method, route template, status and duration.
    const apiLines = fleet.api!.lines.map(parseLine).filter((l) => l !== undefined);
    const ofRequest = apiLines.filter((l) => l.requestId === requestId);
    const access = ofRequest.filter((l) => l.msg === 'request');
    t.is(access.length, 1, 'one access line per request');
    t.like(access[0], { service: 'api', level: 'info', method: 'POST', route: '/orders', status: 201, requestId });
    t.is(typeof access[0].pid, 'number');
    t.true(typeof access[0].durationMs === 'number' && access[0].durationMs >= 0, 'durationMs is a number');

    // The worker: its lines of the job carry the same id as correlationId, with the job's coordinates.
    const workerLines = worker.lines.map(parseLine).filter((l) => l !== undefined);
    const ofOrder = workerLines.filter((l) => l.correlationId === requestId);
    t.true(ofOrder.length >= 1, 'the worker logged the job under the request id');
    for (const line of ofOrder) t.like(line, { service: 'worker', orderId, jobId: orderId });
    const done = ofOrder.filter((l) => l.msg === 'job done');
    t.is(done.length, 1, 'one line per job outcome');
    t.like(done[0], {
      level: 'info',
      correlationId: requestId,
      orderId,
      jobId: orderId,
      attempt: 1,
      outcome: 'completed',
    });
    t.is(typeof done[0].workerId, 'string');
    t.truthy(done[0].workerId);
    t.is(done[0].pid, worker.child.pid, "the worker's own pid");

    // Every line of every process, JSON or not: no key, password or credential header value.
    const secrets = { apiKey, boardPassword, bearer, basic, wrongKey, wrongBasic };
    for (const p of fleet.processes) {
      for (const line of p.lines) {
        for (const [name, secret] of Object.entries(secrets)) {
          if (line.includes(secret)) t.fail(`${p.name} logged the ${name}: ${line}`);
        }
        // Any authorization header that reaches a line is redacted.
        const parsed = parseLine(line);
        const headers = (parsed?.req as { headers?: Record<string, unknown> } | undefined)?.headers ?? parsed?.headers;
        if (headers && typeof headers === 'object' && 'authorization' in headers) {
          t.is((headers as Record<string, unknown>).authorization, '[redacted]', `${p.name}: ${line}`);
        }
      }
    }
    t.pass();
  },
);
