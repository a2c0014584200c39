import { performance } from 'node:perf_hooks';
import { UnrecoverableError, Worker, type Job, type Queue } from 'bullmq';
import type { RedisClient } from '#common';
import {
  NOTIFICATIONS_QUEUE,
  type Logger,
  type Order,
  type OrderEvent,
  type OrderEventPublisher,
  type WebhookConfig,
} from '#common';
import type { NotificationMetrics } from './notification-metrics.js';
import { createWebhookPoster, createWebhookSigner, statusClass, type DeliveryResult } from './webhook-sender.js';
import { LOCK_DURATION_MS, MAX_STALLED_COUNT, STALLED_INTERVAL_MS } from '../settings.js';

/**
 * One delivery attempt of an order event: signed afresh (a new `webhook-timestamp` per attempt, so a
 * late retry still passes the receiver's clock tolerance; the `webhook-id` stays the job id), POSTed
 * with a timeout. Any 2xx delivers; `410 Gone` stops for good (the job fails without retries);
 * anything else throws, and BullMQ retries on the job's back-off until the attempts are spent.
 */
export function createDeliveryProcessor(deps: {
  readonly sign: ReturnType<typeof createWebhookSigner>;
  readonly post: (body: string, headers: ReturnType<ReturnType<typeof createWebhookSigner>>) => Promise<DeliveryResult>;
  readonly metrics: Pick<NotificationMetrics, 'deliveries' | 'latency'>;
  readonly logger: Logger;
}) {
  const { metrics, logger } = deps;
  return async (job: Pick<Job<OrderEvent>, 'id' | 'data' | 'attemptsMade' | 'opts'>): Promise<number> => {
    const webhookId = job.id ?? '';
    const log = logger.child({ orderId: job.data.data.id, webhookId, eventType: job.data.type });
    const body = JSON.stringify(job.data);
    const started = performance.now();
    const result = await deps.post(body, deps.sign(webhookId, body));
    metrics.latency.observe((performance.now() - started) / 1000);
    const statusClassLabel = statusClass(result);
    const attempt = job.attemptsMade + 1;
    if ('status' in result && result.status >= 200 && result.status < 300) {
      metrics.deliveries.inc({ outcome: 'delivered', status_class: statusClassLabel });
      log.info({ status: result.status, attempt }, 'order event delivered');
      return result.status;
    }
    if ('status' in result && result.status === 410) {
      metrics.deliveries.inc({ outcome: 'gone', status_class: statusClassLabel });
      log.warn({ attempt }, 'receiver answered 410 Gone; this event is not retried');
      throw new UnrecoverableError('receiver answered 410 Gone; delivery stopped');
    }
    const last = attempt >= (job.opts.attempts ?? 1);
    metrics.deliveries.inc({ outcome: last ? 'exhausted' : 'retry', status_class: statusClassLabel });
    const why = 'status' in result ? `receiver answered ${result.status}` : `${result.error}: ${result.cause.message}`;
    log.warn(
      { attempt, last, result: statusClassLabel },
      last ? 'order event undeliverable; left in the failed set' : 'order event delivery failed; retried later',
    );
    throw new Error(why);
  };
}

/** The age source of `webhook_oldest_undelivered_seconds`: the oldest event waiting, delayed or in flight. */
export function oldestUndeliveredAt(queue: Pick<Queue<OrderEvent>, 'getJobs'>) {
  return async (): Promise<number | undefined> => {
    const jobs = await queue.getJobs(['wait', 'delayed', 'prioritized', 'active'], 0, 199, true);
    const times = jobs.filter((j) => j !== undefined && j !== null).map((j) => j.timestamp);
    return times.length > 0 ? Math.min(...times) : undefined;
  };
}

/** The BullMQ worker that delivers order events: its own queue and concurrency, apart from the orders. */
export function createNotificationsWorker(deps: {
  readonly connection: RedisClient;
  readonly prefix: string;
  readonly workerId: string;
  readonly webhook: WebhookConfig;
  /** Production: every connection re-checks that the host resolves to a public address. */
  readonly publicOnly: boolean;
  readonly metrics: Pick<NotificationMetrics, 'deliveries' | 'latency'>;
  readonly logger: Logger;
}) {
  const { webhook, logger } = deps;
  const processor = createDeliveryProcessor({
    sign: createWebhookSigner(webhook.secrets),
    post: createWebhookPoster({ url: webhook.url, timeoutMs: webhook.timeoutMs, publicOnly: deps.publicOnly }),
    metrics: deps.metrics,
    logger,
  });
  const worker = new Worker<OrderEvent, number>(NOTIFICATIONS_QUEUE, processor, {
    connection: deps.connection,
    prefix: deps.prefix,
    concurrency: webhook.concurrency,
    name: `${deps.workerId}:webhooks`,
    autorun: false,
    // As on the orders queue: a delivery whose worker died is handed back within about 15 s.
    lockDuration: LOCK_DURATION_MS,
    stalledInterval: STALLED_INTERVAL_MS,
    maxStalledCount: MAX_STALLED_COUNT,
  });
  worker.on('error', (err) => logger.warn({ err }, 'notifications worker error'));
  return {
    worker,
    async start(): Promise<void> {
      void worker.run().catch((err: unknown) => logger.error({ err }, 'notifications worker stopped'));
      await worker.waitUntilReady();
    },
    /** Deliveries in flight get `timeoutMs` (their own timeout bounds them); a cut one is retried. */
    async close(timeoutMs: number): Promise<void> {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        worker.close(),
        new Promise<void>((resolve) => {
          timer = setTimeout(() => void worker.close(true).then(resolve, resolve), timeoutMs);
        }),
      ]).catch(() => undefined);
      clearTimeout(timer);
    },
  };
}

/**
 * The worker's producer of order events: told an order id once its transition is written, it reads
 * the order as it now is and publishes its event. Fire and forget (the order's job never waits for
 * Redis twice); `settle` lets a shutdown wait for what is still being added. The worker reads through
 * `batchedOrderReads` (the orders of concurrent ends in one find), and the publisher adds their events
 * together in the same way.
 */
export function createOrderEventNotifier(deps: {
  readonly findById: (orderId: string) => Promise<Order | null>;
  readonly publisher: OrderEventPublisher;
  readonly logger: Logger;
}) {
  const pending = new Set<Promise<void>>();
  return {
    notify(orderId: string): void {
      const p = deps
        .findById(orderId)
        .then((order) => (order ? deps.publisher.publish(order) : undefined))
        .catch((err: unknown) => deps.logger.error({ err, orderId }, 'order event not published (order unreadable)'))
        .finally(() => pending.delete(p));
      pending.add(p);
    },
    async settle(): Promise<void> {
      await Promise.allSettled([...pending]);
    },
  };
}
