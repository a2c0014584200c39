import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test from 'ava';
import { chromium, type BrowserContext } from 'playwright-core';
import type { OrderView } from '#common';
import { REPO_ROOT } from '../../scripts/lib/process-runner.js';
import { createOrders, requestJson, startTestFleet, waitFor } from '../helpers/fleet.js';
import { transitionsOf } from '../helpers/orders.js';

/**
 * The operator's path through Bull Board in a real browser (issue 4): orders fail for good, the
 * operator logs in, opens the failed jobs of the `orders` queue, clicks Retry on one dead order's job,
 * and the order ends PROCESSED. Chromium comes from Debian (`.ci/install-chromium.sh`); playwright-core
 * only drives it and never downloads a browser.
 */

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const USER = 'ops';
const PASSWORD = 'board-password-for-tests';
const SCREENSHOT = join(REPO_ROOT, 'docs', 'bull-board.png');
const SCREENSHOT_MAX_BYTES = 300 * 1024;
const DASHBOARD_RETRY_REASON = 'dead job retried from the dashboard; attempts start again';

/** Fails the test (never skips it) when Debian's Chromium is not there. */
function requireChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}: run .ci/install-chromium.sh (apt-get install -y chromium). ` +
        'This test needs a real browser and does not skip.',
    );
  }
}

/** A browser with a fresh profile of its own, logged in to the board. */
async function launchBrowser(credentials: {
  readonly username: string;
  readonly password: string;
}): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  requireChromium();
  const profile = await mkdtemp(join(tmpdir(), 'board-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1440, height: 900 },
      httpCredentials: credentials,
      timeout: 60_000,
    });
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw new Error(`could not launch ${CHROMIUM} (reinstall it with .ci/install-chromium.sh): ${String(err)}`);
  }
  // Offline and deterministic: nothing but the system under test (the board asks for web fonts).
  await context.route(/^https?:\/\/(?!127\.0\.0\.1[:/])/, (route) => route.abort());
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}

test('when an operator retries a dead order from Bull Board in a browser, then the order ends PROCESSED with a history that tells the story', async (t) => {
  t.timeout(170_000);
  requireChromium();
  // Phase 1: every attempt fails.
  const fleet = await startTestFleet(t, {
    label: 'browser_board',
    workers: 1,
    health: false,
    env: {
      BULL_BOARD_USER: USER,
      BULL_BOARD_PASSWORD: PASSWORD,
      FAILURE_RATE: '1',
      JOB_ATTEMPTS: '2',
      JOB_BACKOFF_MS: '100',
    },
  });
  const created = await createOrders(fleet.apiUrl, 2, 2);
  const [target, bystander] = created.map((o) => o.id);
  const getOrder = async (id: string) => (await requestJson<OrderView>(`${fleet.apiUrl}/orders/${id}`)).body;
  const queue = fleet.queue();
  await waitFor(
    'both orders FAILED with their jobs in the failed set',
    async () => {
      const orders = await Promise.all(created.map((o) => getOrder(o.id)));
      const states = await Promise.all(created.map((o) => queue.getJobState(o.id)));
      return orders.every((o) => o.status === 'FAILED') && states.every((s) => s === 'failed') ? true : undefined;
    },
    { timeoutMs: 30_000 },
  );
  const dead = await getOrder(target);
  t.is(dead.attempts, 2);

  // Phase 2: the business step works again.
  const [failingWorker] = fleet.workers;
  t.deepEqual(await failingWorker.stop('SIGTERM', 20_000), { code: 0, signal: null }, 'the failing worker stops');
  await fleet.addWorker({ FAILURE_RATE: '0' });

  // Without credentials the board gives nothing away.
  const refused = await requestJson(`${fleet.apiUrl}/admin/queues`);
  t.is(refused.status, 401);
  t.regex(refused.headers.get('www-authenticate') ?? '', /^Basic /);

  const browser = await launchBrowser({ username: USER, password: PASSWORD });
  t.teardown(() => browser.close());
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.setDefaultTimeout(30_000);
  const boardCalls: string[] = [];
  page.on('response', (res) => {
    if (res.url().includes('/admin/queues/api/')) boardCalls.push(`${res.request().method()} ${res.status()}`);
  });

  // The board's home, then the orders queue, then its Failed tab, as an operator clicks through.
  const home = await page.goto(`${fleet.apiUrl}/admin/queues`, { waitUntil: 'domcontentloaded' });
  t.is(home?.status(), 200);
  await page.locator('a[href="/admin/queues/queue/orders"]').first().click();
  await page.locator('a[href="/admin/queues/queue/orders?status=failed"]').click();
  await page.waitForURL(/\/admin\/queues\/queue\/orders\?status=failed$/);
  const card = page.locator('div[class*="card-"]', {
    has: page.locator('span[class*="jobId"]', { hasText: target }),
  });
  await card.waitFor({ state: 'visible' });
  await page.locator('span[class*="jobId"]', { hasText: bystander }).waitFor({ state: 'visible' });
  await page.waitForLoadState('load', { timeout: 10_000 }).catch(() => undefined);

  // The failed tab, with the dead jobs on it, for the README.
  await mkdir(dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT });
  const { size } = await stat(SCREENSHOT);
  t.log(`screenshot: ${SCREENSHOT} (${Math.round(size / 1024)} KB)`);
  t.true(size < SCREENSHOT_MAX_BYTES, `screenshot is ${size} bytes`);

  // Retry (the refresh icon of the job's card), then the board's confirmation.
  const retried = page.waitForResponse(
    (res) => res.request().method() === 'PUT' && res.url().endsWith(`/admin/queues/api/queues/orders/${target}/retry`),
  );
  await card.locator('button:has(svg.lucide-refresh-cw)').click();
  await page.getByRole('button', { name: 'Confirm' }).click();
  t.is((await retried).status(), 204);

  // The order comes back through the API, PROCESSED, and its history tells what happened.
  const processed = await waitFor(
    'the retried order to be PROCESSED',
    async () => {
      const order = await getOrder(target);
      return order.status === 'PROCESSED' ? order : undefined;
    },
    { timeoutMs: 30_000, describe: () => fleet.tail(10) },
  );
  t.deepEqual(
    transitionsOf(processed.history).map((h) => [h.status, h.attempt ?? null, h.reason ?? null]),
    [
      ['PENDING', null, null],
      ['PROCESSING', 1, null],
      ['PENDING', null, `simulated failure of ${target} on attempt 1`],
      ['PROCESSING', 2, null],
      ['FAILED', null, `simulated failure of ${target} on attempt 2`],
      ['PROCESSING', 1, DASHBOARD_RETRY_REASON],
      ['PROCESSED', null, null],
    ],
  );
  t.is(processed.attempts, 3);
  t.truthy(processed.processedAt);
  const db = await fleet.db();
  t.is(await db.collection('order_effects').countDocuments({ _id: target as never }), 1, 'one effect');
  t.is((await getOrder(bystander)).status, 'FAILED', 'only the retried order came back');

  // The board agrees: the job left the failed tab.
  await page.reload({ waitUntil: 'domcontentloaded' });
  await page.locator('span[class*="jobId"]', { hasText: bystander }).waitFor({ state: 'visible' });
  t.is(await card.count(), 0, 'the retried job is no longer in the failed tab');
  t.true(boardCalls.includes('PUT 204'), boardCalls.join(', '));
  t.false(
    boardCalls.some((c) => /^\w+ (401|403)$/.test(c)),
    `the browser's own calls pass the board's guards: ${boardCalls.join(', ')}`,
  );
});
