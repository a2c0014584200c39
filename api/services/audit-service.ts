import type { Logger } from '#common';
import type { AuditEvent, AuditRepository } from '../repositories/audit-repository.js';

export type AuditLog = ReturnType<typeof createAuditLog>;

/**
 * The operators' audit: every action (and every refusal) becomes one log line with a stable
 * `audit: true` field, always, and one record in MongoDB's `audit_events` (GET /admin/audit). The log
 * line comes first and cannot fail; a record MongoDB refused is logged as an error, and the action
 * itself is not undone for it (the log line remains the record).
 */
export function createAuditLog(deps: {
  readonly repository: AuditRepository;
  readonly logger: Logger;
  readonly now?: () => Date;
}) {
  const { repository } = deps;
  const logger = deps.logger.child({ module: 'audit' });
  const now = deps.now ?? (() => new Date());
  return {
    async record(event: Omit<AuditEvent, 'at'>): Promise<void> {
      const full: AuditEvent = { at: now(), ...event };
      const level = event.outcome === 'done' ? 'info' : 'warn';
      logger[level]({ audit: true, ...full }, `audit: ${event.action} by ${event.actor} ${event.outcome}`);
      try {
        await repository.insert(full);
      } catch (err) {
        logger.error({ err, audit: true, action: event.action, actor: event.actor }, 'audit record not stored');
      }
    },

    list: repository.list,
  };
}
