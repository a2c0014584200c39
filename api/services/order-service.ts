import {
  AppError,
  fingerprint,
  holdsEffects,
  newOrder,
  orderIdFromKey,
  randomOrderId,
  type Logger,
  type NewOrderInput,
  type Order,
} from '#common';
import { DuplicateOrderError, type ListOrdersQuery, type OrderRepository } from '../repositories/order-repository.js';
import type { EnqueueMarks } from '../repositories/enqueue-marks.js';
import type { OrderJobs } from '../repositories/order-jobs.js';
import { createDirectIntake, type OrderIntake } from '../repositories/order-intake.js';

/**
 * How an intake ended: `created` (stored and queued), `replayed` (the idempotency key named an
 * order with the same body), `accepted_unqueued` (stored, but Redis did not take the job; the
 * reconciler enqueues it later).
 */
export type IntakeOutcome = 'created' | 'replayed' | 'accepted_unqueued';

export interface CreateOrderCommand {
  readonly input: NewOrderInput;
  readonly idempotencyKey?: string;
  /** The client the key belongs to (docs/design.md: the authenticated client id, or `public`). */
  readonly scope: string;
  readonly correlationId: string;
}

/** A listing request: the repository's query as it is (only this client's orders are listed). */
export type ListOrdersCommand = ListOrdersQuery;

export type OrderService = ReturnType<typeof createOrderService>;

export function createOrderService(deps: {
  readonly repository: OrderRepository;
  readonly jobs: OrderJobs;
  /** The new order's insert and add (group commit at intake); absent: each order written on its own. */
  readonly intake?: OrderIntake;
  /** Records `enqueuedAt` in the background, batched (the reply never waits for it). */
  readonly marks: EnqueueMarks;
  readonly logger: Logger;
  readonly now?: () => Date;
  /** Told of each cancelled order (its webhook event); best effort, never throws. Absent: no events. */
  readonly events?: { publish(order: Order): Promise<void> };
}) {
  const { repository, jobs, marks, logger } = deps;
  const intake = deps.intake ?? createDirectIntake({ repository, jobs });
  const now = deps.now ?? (() => new Date());

  /**
   * Adds the order's job, then has `enqueuedAt` recorded (write-behind, batched); false when Redis
   * did not take the job (the order stays safe in MongoDB and the reconciler enqueues it later).
   */
  async function enqueue(order: Order): Promise<boolean> {
    try {
      await intake.enqueue(order);
    } catch (err) {
      logger.warn({ err, orderId: order.id }, 'order stored but not queued; the reconciler will enqueue it');
      return false;
    }
    marks.record(order.id);
    return true;
  }

  async function replay(id: string, requestFingerprint: string | null): Promise<Order> {
    const existing = await repository.findById(id);
    if (!existing) throw new Error(`order ${id} reported as duplicate but not found`);
    if (existing.fingerprint !== requestFingerprint) {
      throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request body', {
        details: [{ field: 'Idempotency-Key', message: 'already used for another request' }],
      });
    }
    // The first request may still be adding the job, or may have lost Redis; adding again is harmless
    // (same job id) and finishes the outbox sooner than the reconciler would.
    if (existing.status === 'PENDING' && existing.enqueuedAt === null) await enqueue(existing);
    return existing;
  }

  /** The order, if it exists and belongs to `clientId`; another client's order is a 404 too. */
  async function get(id: string, clientId: string): Promise<Order> {
    const order = await repository.findById(id);
    if (!order || order.clientId !== clientId) throw new AppError('NOT_FOUND', `order ${id} not found`);
    return order;
  }

  /**
   * Has the order's job run (again) so the worker compensates the cancelled order. Redis away: the
   * cancel marked the order `compensationDue`, and the reconciler queues its job once Redis is back.
   */
  async function compensateLater(order: Order): Promise<void> {
    try {
      await jobs.revive(order);
    } catch (err) {
      logger.warn(
        { err, orderId: order.id },
        'cancelled order still holds effects and its job could not be queued (Redis away); the reconciler queues it once Redis is back',
      );
    }
  }

  return {
    async create(command: CreateOrderCommand): Promise<{ order: Order; outcome: IntakeOutcome }> {
      // Only a keyed request can be replayed, so only it needs a fingerprint to judge the replay by.
      const requestFingerprint = command.idempotencyKey ? fingerprint(command.input) : null;
      const id = command.idempotencyKey ? orderIdFromKey(command.scope, command.idempotencyKey) : randomOrderId();
      let order: Order;
      try {
        order = await intake.insert(
          newOrder({
            id,
            clientId: command.scope,
            input: command.input,
            fingerprint: requestFingerprint,
            correlationId: command.correlationId,
            at: now(),
          }),
        );
      } catch (err) {
        if (err instanceof DuplicateOrderError && command.idempotencyKey) {
          return { order: await replay(id, requestFingerprint), outcome: 'replayed' };
        }
        throw err;
      }
      const queued = await enqueue(order);
      return { order, outcome: queued ? 'created' : 'accepted_unqueued' };
    },

    get,

    list: (command: ListOrdersCommand) => repository.list(command),

    /** PENDING or FAILED → CANCELLED; a job still queued for it completes as a no-op. */
    async cancel(id: string, clientId: string): Promise<Order> {
      await get(id, clientId);
      const cancelled = await repository.cancel(id);
      if (cancelled) {
        // The reply does not wait for the event: it is best effort and never changes the cancel.
        void deps.events?.publish(cancelled);
        // A cancelled order may still hold stock or a charge (a PENDING order between retries, a FAILED
        // one whose compensation failed): its job runs once more, and the worker undoes them.
        if (holdsEffects(cancelled)) await compensateLater(cancelled);
        return cancelled;
      }
      const existing = await get(id, clientId);
      throw new AppError(
        'INVALID_STATE',
        `order ${id} is ${existing.status}; only PENDING or FAILED orders can be cancelled`,
      );
    },
  };
}
