import { AppError, type Logger } from '#common';
import type { DeadNotification, NotificationJobs } from '../repositories/notification-jobs.js';
import { QueueUnavailableError } from '../repositories/order-jobs.js';
import { REPROCESS_BATCH, type BulkReprocessResult } from './dlq-service.js';

export type NotificationDlqService = ReturnType<typeof createNotificationDlqService>;

/**
 * The webhooks' dead letters: the undeliverable order events (the `notifications` queue's failed set).
 * Replaying one retries its job with the attempts reset, so the receiver gets the same `webhook-id` again.
 */
export function createNotificationDlqService(deps: { readonly jobs: NotificationJobs; readonly logger: Logger }) {
  const { jobs, logger } = deps;
  // Without Redis nothing is known about the failed set: say so (503), never "empty".
  const orUnavailable = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      if (err instanceof QueueUnavailableError) {
        throw new AppError('SERVICE_UNAVAILABLE', 'the queue (Redis) is not reachable; retry later', { cause: err });
      }
      throw err;
    }
  };

  return {
    list(limit: number): Promise<{ items: DeadNotification[]; total: number }> {
      return orUnavailable(() => jobs.listFailed(limit));
    },

    async reprocess(id: string, who: { actor: string; reason?: string }): Promise<DeadNotification> {
      const { outcome, job } = await orUnavailable(() => jobs.retry(id));
      if (outcome === 'not_found' || !job) throw new AppError('NOT_FOUND', `notification ${id} not found`);
      if (outcome === 'not_failed') {
        throw new AppError('INVALID_STATE', `notification ${id} is not failed; only failed ones can be reprocessed`);
      }
      logger.info(
        { webhookId: id, orderId: job.orderId, actor: who.actor, reason: who.reason },
        'dead notification reprocessed',
      );
      return job;
    },

    async reprocessAll(actor: string): Promise<BulkReprocessResult> {
      const { retried, skipped } = await orUnavailable(() => jobs.retryAll(REPROCESS_BATCH));
      logger.info({ reprocessed: retried, skipped, actor }, 'dead notifications reprocessed');
      return { reprocessed: retried, skipped, notFound: 0 };
    },
  };
}
