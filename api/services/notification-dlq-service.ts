import { AppError, type Logger } from '#common';
import type { Job } from 'bullmq';
import type { OrderEvent } from '#common';
import type { DeadNotification, DeadNotificationFilter, NotificationJobs } from '../repositories/notification-jobs.js';
import { orUnavailable } from './queue-unavailable.js';
import {
  DRY_RUN_SAMPLE,
  REPROCESS_BATCH,
  type BulkReprocessResult,
  type FilteredReplayResult,
  type ReplayCandidate,
} from './dlq-service.js';

const toCandidate = (job: Job<OrderEvent>): ReplayCandidate => ({
  id: job.id ?? '',
  orderId: job.data?.data?.id ?? null,
  customerId: job.data?.data?.customerId ?? null,
  failedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
  failedReason: job.failedReason ?? null,
});

export type NotificationDlqService = ReturnType<typeof createNotificationDlqService>;

/**
 * The webhooks' dead letters: the undeliverable order events (the `notifications` queue's failed set).
 * Replaying one retries its job with the attempts reset, so the receiver gets the same `webhook-id` again.
 */
export function createNotificationDlqService(deps: { readonly jobs: NotificationJobs; readonly logger: Logger }) {
  const { jobs, logger } = deps;

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

    /**
     * A filtered replay of failed deliveries: a dry run counts the matches (and lists a sample) and
     * changes nothing; otherwise at most `limit` of them are retried (attempts reset, same `webhook-id`)
     * and `remaining` says how many still match. Each call walks the failed set once or twice.
     */
    async replayMatching(input: {
      filter: DeadNotificationFilter;
      limit: number;
      dryRun: boolean;
      actor: string;
      reason?: string;
    }): Promise<FilteredReplayResult> {
      const take = input.dryRun ? Math.min(input.limit, DRY_RUN_SAMPLE) : input.limit;
      const found = await orUnavailable(() => jobs.scanFailed(input.filter, take));
      if (input.dryRun) return { dryRun: true, matched: found.matched, sample: found.jobs.map(toCandidate) };
      const { retried, skipped } = await orUnavailable(() => jobs.retryJobs(found.jobs));
      const { matched: remaining } = await orUnavailable(() => jobs.scanFailed(input.filter, 0));
      logger.info(
        { actor: input.actor, reason: input.reason, filter: input.filter, reprocessed: retried, skipped, remaining },
        'filtered replay of dead notifications',
      );
      return { dryRun: false, reprocessed: retried, skipped, notFound: 0, remaining };
    },

    async reprocessAll(actor: string): Promise<BulkReprocessResult> {
      const { retried, skipped } = await orUnavailable(() => jobs.retryAll(REPROCESS_BATCH));
      logger.info({ reprocessed: retried, skipped, actor }, 'dead notifications reprocessed');
      return { reprocessed: retried, skipped, notFound: 0 };
    },
  };
}
