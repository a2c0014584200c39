/**
 * In-memory fakes of the order workflow's ports (worker/saga/ports.ts), each honouring its contract,
 * with one fault injector shared by all: any port call can be made to fail before its effect (the
 * call never happened) or after it (the effect happened, the answer was lost: a timeout, or a crash
 * before the next write). They count effects, so tests can assert "exactly once" on stock and money.
 */
import {
  createLogger,
  type OrderItem,
  type OrderStatus,
  type RejectionReason,
  type StepCheckpoint,
  type StepName,
} from '#common';
import { createOrderSaga, type SagaContext, type SagaOrder } from '../../worker/saga/order-saga.js';
import {
  PaymentUnavailableError,
  chargeKey,
  type Charge,
  type ChargeRequest,
  type InventoryPort,
  type PaymentPort,
  type SagaOrderPort,
} from '../../worker/saga/ports.js';

// --- faults ---------------------------------------------------------------------------------------

/** `before`: the call fails and nothing happened; `after`: the effect happened, then the call failed. */
export type FaultPhase = 'before' | 'after';

/**
 * Call points: `inventory.reserve|commit|release|holds`, `payments.charge|findCharge|refund`,
 * `orders.checkpoint:<step>`, `orders.compensated:<step>`, and the driver's `orders.complete|reject`.
 */
export type FaultPoint = string;

interface Fault {
  readonly phase: FaultPhase;
  readonly error?: Error;
}

export type Faults = ReturnType<typeof createFaults>;

export function createFaults() {
  const byPoint: { point: FaultPoint; fault: Fault }[] = [];
  const byCall = new Map<number, Fault>();
  let calls = 0;
  /** Every call made, in order (`point`, or `point!before` / `point!after` when it was failed). */
  const trace: string[] = [];

  return {
    trace,
    get calls() {
      return calls;
    },
    /** The next call at `point` fails (`error` or the port's usual transient error). */
    failNext(point: FaultPoint, phase: FaultPhase = 'before', error?: Error) {
      byPoint.push({ point, fault: { phase, error } });
    },
    /** The `n`th port call from now on, counted across all fakes (1-based), fails. */
    failCall(n: number, phase: FaultPhase, error?: Error) {
      byCall.set(calls + n, { phase, error });
    },
    /** How many calls were made at `point`. */
    count(point: FaultPoint) {
      return trace.filter((entry) => entry.split('!')[0] === point).length;
    },

    /** Runs `effect` as the call at `point`, failing it as planned. */
    async call<T>(point: FaultPoint, transient: () => Error, effect: () => T): Promise<T> {
      calls += 1;
      const queued = byPoint.findIndex((f) => f.point === point);
      const fault = queued >= 0 ? byPoint.splice(queued, 1)[0].fault : byCall.get(calls);
      byCall.delete(calls);
      trace.push(fault ? `${point}!${fault.phase}` : point);
      // Every call yields once, like real I/O, so concurrent runs interleave between calls.
      await Promise.resolve();
      if (fault?.phase === 'before') throw fault.error ?? transient();
      const result = effect();
      if (fault?.phase === 'after') throw fault.error ?? transient();
      return result;
    },
  };
}

const injected = (point: string) => () => new Error(`injected failure at ${point}`);

// --- inventory ------------------------------------------------------------------------------------

export interface StockLevels {
  available: number;
  reserved: number;
  sold: number;
}

export type FakeInventory = ReturnType<typeof createFakeInventory>;

/**
 * Stock per SKU and one hold per order (`reserved`, then `sold`); a released hold is gone, so the
 * order can reserve again. Untracked SKUs (no stock set) are always available and counted nowhere.
 */
export function createFakeInventory({ faults, stock = {} }: { faults: Faults; stock?: Record<string, number> }) {
  const skus = new Map<string, StockLevels>(
    Object.entries(stock).map(([sku, available]) => [sku, { available, reserved: 0, sold: 0 }]),
  );
  const initial = new Map(Object.entries(stock));
  // As in MongoDB, a sale leaves no hold behind: `reserve` after a sale takes the stock again.
  const holds = new Set<string>();
  const sold = new Set<string>();
  const effects = {
    reservations: new Map<string, number>(),
    sales: new Map<string, number>(),
    releases: new Map<string, number>(),
  };
  const bump = (counter: Map<string, number>, orderId: string) => counter.set(orderId, (counter.get(orderId) ?? 0) + 1);
  type Items = readonly Pick<OrderItem, 'sku' | 'quantity'>[];
  const move = (items: Items, from: keyof StockLevels, to: keyof StockLevels) => {
    for (const { sku, quantity } of items) {
      const levels = skus.get(sku);
      if (levels) {
        levels[from] -= quantity;
        levels[to] += quantity;
      }
    }
  };

  const port: InventoryPort = {
    reserve: (orderId, items) =>
      faults.call('inventory.reserve', injected('inventory.reserve'), () => {
        if (holds.has(orderId)) return { outcome: 'reserved' as const };
        const taken: Pick<OrderItem, 'sku' | 'quantity'>[] = [];
        for (const item of items) {
          const levels = skus.get(item.sku);
          if (levels && levels.available < item.quantity) {
            move(taken, 'reserved', 'available');
            return { outcome: 'out_of_stock' as const, sku: item.sku };
          }
          move([item], 'available', 'reserved');
          taken.push(item);
        }
        holds.add(orderId);
        // Stock of untracked SKUs is counted nowhere: taking or selling it is no effect to count.
        if (items.some((item) => skus.has(item.sku))) bump(effects.reservations, orderId);
        return { outcome: 'reserved' as const };
      }),
    commit: (orderId, items) =>
      faults.call('inventory.commit', injected('inventory.commit'), () => {
        if (!holds.has(orderId)) return;
        move(items, 'reserved', 'sold');
        holds.delete(orderId);
        sold.add(orderId);
        if (items.some((item) => skus.has(item.sku))) bump(effects.sales, orderId);
      }),
    release: (orderId, items) =>
      faults.call('inventory.release', injected('inventory.release'), () => {
        if (!holds.has(orderId)) return;
        move(items, 'reserved', 'available');
        holds.delete(orderId);
        bump(effects.releases, orderId);
      }),
    holds: (orderId, items) =>
      faults.call('inventory.holds', injected('inventory.holds'), () => {
        const tracked = new Set(items.map((item) => item.sku).filter((sku) => skus.has(sku))).size;
        return { tracked, holding: holds.has(orderId) ? tracked : 0 };
      }),
  };

  return {
    port,
    levels: (sku: string): StockLevels | undefined => {
      const levels = skus.get(sku);
      return levels && { ...levels };
    },
    hold: (orderId: string) => (holds.has(orderId) ? 'reserved' : sold.has(orderId) ? 'sold' : 'none'),
    reservations: (orderId: string) => effects.reservations.get(orderId) ?? 0,
    sales: (orderId: string) => effects.sales.get(orderId) ?? 0,
    releases: (orderId: string) => effects.releases.get(orderId) ?? 0,
    /** SKUs whose available + reserved + sold differs from the stock set (should be none). */
    unbalanced: () =>
      [...skus].filter(([sku, l]) => l.available + l.reserved + l.sold !== initial.get(sku) || l.available < 0),
  };
}

// --- payments -------------------------------------------------------------------------------------

interface StoredCharge extends Charge {
  readonly key: string;
  refundId?: string;
}

export type FakePayments = ReturnType<typeof createFakePayments>;

/**
 * A provider with idempotency by key: the same key returns the same charge, refunded or not. Declines
 * `testCard: "declined"`. Refunds are idempotent per charge. `ignoreKeys` plays a provider (or an
 * adapter) that drops the request's key and always uses `<orderId>:charge`.
 */
export function createFakePayments({ faults, ignoreKeys = false }: { faults: Faults; ignoreKeys?: boolean }) {
  const charges = new Map<string, StoredCharge>();
  const requests: ChargeRequest[] = [];
  let ids = 0;
  const keyOf = (orderId: string, key?: string) => (ignoreKeys ? undefined : key) ?? chargeKey(orderId);
  const view = ({ id, orderId, status, amountCents }: StoredCharge): Charge => ({ id, orderId, status, amountCents });
  const unavailable = (what: string) => () =>
    new PaymentUnavailableError(`injected: payment provider timed out (${what})`);
  const ofOrder = (orderId: string) => [...charges.values()].filter((c) => c.orderId === orderId);

  const port: PaymentPort = {
    charge: (request) =>
      faults.call('payments.charge', unavailable('charge'), () => {
        requests.push(request);
        const key = keyOf(request.orderId, request.idempotencyKey);
        let charge = charges.get(key);
        if (!charge) {
          ids += 1;
          const status = request.testCard === 'declined' ? 'declined' : 'succeeded';
          charge = { id: `ch_${ids}`, orderId: request.orderId, status, amountCents: request.amountCents, key };
          charges.set(key, charge);
        }
        return view(charge);
      }),
    findCharge: (orderId, key) =>
      faults.call('payments.findCharge', unavailable('findCharge'), () => {
        const charge = charges.get(keyOf(orderId, key));
        return charge ? view(charge) : null;
      }),
    refund: ({ orderId, chargeId, amountCents }) =>
      faults.call('payments.refund', unavailable('refund'), () => {
        const charge = [...charges.values()].find((c) => c.id === chargeId);
        if (!charge || charge.orderId !== orderId) throw new Error(`no charge ${chargeId} for ${orderId}`);
        if (charge.status !== 'succeeded') throw new Error(`charge ${chargeId} was not paid`);
        if (amountCents !== charge.amountCents)
          throw new Error(`refund of ${amountCents}, charge of ${charge.amountCents}`);
        ids += 1;
        charge.refundId ??= `re_${ids}`;
        return { id: charge.refundId };
      }),
  };

  return {
    port,
    /** Charge requests the provider received for the order (answered or not). */
    chargeRequests: (orderId: string) => requests.filter((r) => r.orderId === orderId),
    succeeded: (orderId: string) => ofOrder(orderId).filter((c) => c.status === 'succeeded').length,
    refunded: (orderId: string) => ofOrder(orderId).filter((c) => c.refundId !== undefined).length,
    /** Succeeded charges not refunded: money actually taken. At most one per order, ever. */
    standing: (orderId: string) =>
      ofOrder(orderId)
        .filter((c) => c.status === 'succeeded' && !c.refundId)
        .map(view),
    charges: (orderId: string) => ofOrder(orderId).map((c) => ({ ...view(c), key: c.key, refundId: c.refundId })),
  };
}

// --- orders ---------------------------------------------------------------------------------------

interface StoredOrder {
  order: SagaOrder;
  status: OrderStatus;
  rejectionReason?: RejectionReason;
  /** What the order's history would show of the saga: `reserve done`, `charge compensated ch_1`, … */
  events: string[];
}

export type FakeOrders = ReturnType<typeof createFakeOrders>;

/**
 * The order repository as far as the saga and its caller use it: the SagaOrderPort (checkpoints,
 * conditional on the order's status as the port says), and the caller's transitions, simplified.
 * Its writes fail through the shared faults like any call (`failNext('orders.checkpoint:charge')`,
 * or `failCall(n)` for the nth call of any kind: a crash simulation).
 */
export function createFakeOrders({ faults, now = () => new Date() }: { faults: Faults; now?: () => Date }) {
  const orders = new Map<string, StoredOrder>();

  const stored = (id: string) => {
    const entry = orders.get(id);
    if (!entry) throw new Error(`no order ${id}`);
    return entry;
  };
  const setStep = (entry: StoredOrder, step: StepName, checkpoint: StepCheckpoint) => {
    entry.order = { ...entry.order, steps: { ...entry.order.steps, [step]: checkpoint } };
  };
  const write = async (point: string, id: string, allowed: OrderStatus[], apply: (entry: StoredOrder) => void) => {
    await faults.call(point, injected(point), () => {
      const entry = stored(id);
      if (!allowed.includes(entry.status)) throw new Error(`order ${id} is ${entry.status}, not ${allowed.join('/')}`);
      apply(entry);
    });
  };

  const port: SagaOrderPort = {
    checkpoint: (id, step, ref) =>
      write(`orders.checkpoint:${step}`, id, ['PROCESSING'], (entry) => {
        setStep(entry, step, { status: 'done', at: now(), ...(ref !== undefined ? { ref } : {}) });
        entry.events.push(`${step} done${ref ? ` ${ref}` : ''}`);
      }),
    compensated: (id, step, ref) =>
      write(`orders.compensated:${step}`, id, ['PROCESSING', 'FAILED', 'CANCELLED'], (entry) => {
        setStep(entry, step, { status: 'compensated', at: now(), ...(ref !== undefined ? { ref } : {}) });
        entry.events.push(`${step} compensated${ref ? ` ${ref}` : ''}`);
      }),
  };

  const move = (id: string, from: OrderStatus[], to: OrderStatus) => {
    const entry = stored(id);
    if (!from.includes(entry.status)) throw new Error(`order ${id}: ${entry.status} → ${to} is no legal move`);
    entry.status = to;
    return entry;
  };

  return {
    port,
    add(order: SagaOrder) {
      orders.set(order.id, { order, status: 'PENDING', events: [] });
    },
    get: (id: string) => stored(id).order,
    status: (id: string) => stored(id).status,
    rejectionReason: (id: string) => stored(id).rejectionReason,
    events: (id: string) => [...stored(id).events],

    // The caller's transitions (the processing service's repository, reduced to what the tests need).
    claim(id: string): SagaOrder {
      const entry = move(id, ['PENDING', 'FAILED', 'PROCESSING'], 'PROCESSING');
      entry.order = { ...entry.order, attempts: entry.order.attempts + 1 };
      return entry.order;
    },
    /** PROCESSED, writing `steps.confirm` in the same update (the saga leaves it to this write). */
    complete: (id: string) =>
      faults.call('orders.complete', injected('orders.complete'), () => {
        const entry = move(id, ['PROCESSING'], 'PROCESSED');
        setStep(entry, 'confirm', { status: 'done', at: now() });
      }),
    reject: (id: string, reason: RejectionReason) =>
      faults.call('orders.reject', injected('orders.reject'), () => {
        move(id, ['PROCESSING'], 'REJECTED').rejectionReason = reason;
      }),
    // Conditional, like the repository's updates: nothing happens when the order has moved on
    // (say its PROCESSED mark landed though the write's answer was lost).
    retry: (id: string) => stored(id).status === 'PROCESSING' && Boolean(move(id, ['PROCESSING'], 'PENDING')),
    fail: (id: string) => stored(id).status === 'PROCESSING' && Boolean(move(id, ['PROCESSING'], 'FAILED')),
    cancel: (id: string) => void move(id, ['PENDING', 'FAILED'], 'CANCELLED'),
    reprocess: (id: string) => void move(id, ['FAILED'], 'PENDING'),
  };
}

// --- a world --------------------------------------------------------------------------------------

let orderNumber = 0;

/** An order as the api would store it (one SKU-1 × 2 at 1250 cents, never claimed), with `overrides`. */
export function sagaOrder(overrides: Partial<SagaOrder> = {}): SagaOrder {
  orderNumber += 1;
  const items = overrides.items ?? [{ sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 }];
  return {
    id: `ord_${orderNumber.toString(16).padStart(32, '0')}`,
    items,
    totalCents: items.reduce((sum, item) => sum + item.quantity * item.unitPriceCents, 0),
    currency: 'EUR',
    attempts: 0,
    ...overrides,
  };
}

export type SagaWorld = ReturnType<typeof createSagaWorld>;

/**
 * The fakes, a saga over them, and a driver that plays the processing service: `attempt` claims the
 * order, runs the saga and applies its outcome (PROCESSED / REJECTED; an error sends the order back
 * to PENDING, or to FAILED when `last`), `compensate` undoes what the order as stored now holds.
 */
export function createSagaWorld(
  options: { stock?: Record<string, number>; ignoreKeys?: boolean; onStep?: SagaContext['onStep'] } = {},
) {
  const faults = createFaults();
  const inventory = createFakeInventory({ faults, stock: options.stock ?? { 'SKU-1': 10 } });
  const payments = createFakePayments({ faults, ignoreKeys: options.ignoreKeys });
  const orders = createFakeOrders({ faults });
  const saga = createOrderSaga({
    inventory: inventory.port,
    payments: payments.port,
    orders: orders.port,
    logger: createLogger({ service: 'test', level: 'silent' }),
  });
  const ctx: SagaContext = options.onStep ? { onStep: options.onStep } : {};

  return {
    faults,
    inventory,
    payments,
    orders,
    saga,
    /** Stores a new PENDING order and returns it. */
    place(overrides: Partial<SagaOrder> = {}) {
      const order = sagaOrder(overrides);
      orders.add(order);
      return order;
    },
    /** One attempt; resolves with the outcome, or with the error the saga threw. */
    async attempt(id: string, { last = false } = {}): Promise<'processed' | 'rejected' | Error> {
      const order = orders.claim(id);
      try {
        const result = await saga.run(order, ctx);
        if (result.outcome === 'processed') await orders.complete(id);
        else await orders.reject(id, result.reason);
        return result.outcome;
      } catch (err) {
        if (last) orders.fail(id);
        else orders.retry(id);
        return err as Error;
      }
    },
    compensate: (id: string) => saga.compensate(orders.get(id), ctx),
  };
}
