import test from 'ava';
import {
  applyTransitionSpec,
  canTransition,
  newOrder,
  orderMoves,
  toOrder,
  HISTORY_LIMIT,
  ORDER_STATUSES,
  type TransitionRequest,
} from '#common';
import { storedOrder } from '../helpers/orders.js';

const AT = new Date('2026-01-01T00:00:00Z');
const MOVES: Record<string, TransitionRequest> = {
  claim: orderMoves.claim(1),
  claimDead: orderMoves.claimDead(1),
  complete: orderMoves.complete(AT),
  scheduleRetry: orderMoves.scheduleRetry('boom'),
  fail: orderMoves.fail('boom'),
  cancel: orderMoves.cancel(),
  reprocess: orderMoves.reprocess('ops', 'fixed'),
};

test('when each named move is checked, then every source it names is a legal transition of the state machine', (t) => {
  for (const [name, request] of Object.entries(MOVES)) {
    t.true((request.from ?? []).length > 0, name);
    for (const from of request.from ?? []) t.true(canTransition(from, request.to), `${name}: ${from} -> ${request.to}`);
  }
});

test('when a move is applied to an order in each state, then only its named sources move', (t) => {
  for (const [name, request] of Object.entries(MOVES)) {
    for (const status of ORDER_STATUSES) {
      const moved = applyTransitionSpec(toOrder(storedOrder(status)), request);
      t.is(moved !== null, request.from?.includes(status) ?? false, `${name} from ${status}`);
      if (moved) t.is(moved.status, request.to);
    }
  }
});

test('when a claim is applied, then claims grow by one and the history records the job attempt', (t) => {
  const order = toOrder(storedOrder('PENDING', { attempts: 2 }));
  const claimed = applyTransitionSpec(order, orderMoves.claim(3));
  t.is(claimed?.attempts, 3);
  t.like(claimed?.history.at(-1), { status: 'PROCESSING', attempt: 3 });
});

test('when more moves are applied than the history keeps, then the oldest entries are dropped', (t) => {
  let order = toOrder(storedOrder('PENDING'));
  for (let i = 1; i <= HISTORY_LIMIT; i += 1) {
    order = applyTransitionSpec(order, orderMoves.claim(i)) ?? order;
    order = applyTransitionSpec(order, orderMoves.scheduleRetry(`failure ${i}`)) ?? order;
  }
  t.is(order.history.length, HISTORY_LIMIT);
  t.is(order.history.at(-1)?.reason, `failure ${HISTORY_LIMIT}`);
});

test('when a new order is built, then it is PENDING with no claims, its total computed and not yet enqueued', (t) => {
  const order = newOrder({
    id: 'ord_1',
    clientId: 'shop',
    input: {
      customerId: 'c-1',
      currency: 'EUR',
      items: [
        { sku: 'A', quantity: 2, unitPriceCents: 150 },
        { sku: 'B', quantity: 1, unitPriceCents: 1000 },
      ],
      metadata: { channel: 'web' },
    },
    fingerprint: null,
    correlationId: 'corr',
    at: AT,
  });
  t.like(order, {
    status: 'PENDING',
    clientId: 'shop',
    totalCents: 1300,
    attempts: 0,
    enqueuedAt: null,
    createdAt: AT,
  });
  t.deepEqual(order.history, [{ status: 'PENDING', at: AT }]);
  t.deepEqual(order.metadata, { channel: 'web' });
});
