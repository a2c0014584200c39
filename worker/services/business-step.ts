import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Order } from '#common';

/** The error the simulated business step throws; BullMQ retries it like any other. */
export class SimulatedFailure extends Error {
  constructor(orderId: string, attempt: number) {
    super(`simulated failure of ${orderId} on attempt ${attempt}`);
    this.name = 'SimulatedFailure';
  }
}

/** A number in [0, 1) fixed by the order id and attempt, so a failure is reproducible. */
export function failureDraw(orderId: string, attempt: number): number {
  const digest = createHash('sha256').update(`${orderId}:${attempt}`).digest();
  return digest.readUInt32BE(0) / 0x1_0000_0000;
}

/** `signal` aborts the step when the worker must hand the job back (shutdown past its bound). */
export type BusinessStep = (order: Order, attempt: number, signal?: AbortSignal) => Promise<void>;

/**
 * The stand-in for real work (charging, reserving stock): waits `delayMs`, then fails when the
 * order's draw for this attempt is below `failureRate` (docs/design.md: deterministic per order id and attempt).
 */
export function createSimulatedStep(options: { readonly delayMs: number; readonly failureRate: number }): BusinessStep {
  return async (order, attempt, signal) => {
    if (options.delayMs > 0) await sleep(options.delayMs, undefined, { signal });
    signal?.throwIfAborted();
    // No hash at all when nothing is meant to fail (the production setting).
    if (options.failureRate > 0 && failureDraw(order.id, attempt) < options.failureRate) {
      throw new SimulatedFailure(order.id, attempt);
    }
  };
}
