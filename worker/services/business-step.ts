import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Order } from '#common';

/** The error the simulated business step throws; BullMQ retries it like any other. */
export class SimulatedFailure extends Error {
  constructor(orderId: string, claims: number) {
    super(`simulated failure of ${orderId} on attempt ${claims}`);
    this.name = 'SimulatedFailure';
  }
}

/**
 * A number in [0, 1) fixed by the order id and its claim count (the `attempts` it shows), so a failure
 * is reproducible.
 */
export function failureDraw(orderId: string, claims: number): number {
  const digest = createHash('sha256').update(`${orderId}:${claims}`).digest();
  return digest.readUInt32BE(0) / 0x1_0000_0000;
}

/**
 * `claims` is the order's count of claims (`attempts`), this one included; `signal` aborts the step
 * when the worker must hand the job back (shutdown past its bound).
 */
export type BusinessStep = (order: Order, claims: number, signal?: AbortSignal) => Promise<void>;

/**
 * The stand-in for real work (charging, reserving stock): waits `delayMs`, then fails when the
 * order's draw for this claim is below `failureRate` (deterministic per order id and claim count).
 */
export function createSimulatedStep(options: { readonly delayMs: number; readonly failureRate: number }): BusinessStep {
  return async (order, claims, signal) => {
    if (options.delayMs > 0) await sleep(options.delayMs, undefined, { signal });
    signal?.throwIfAborted();
    // No hash at all when nothing is meant to fail (the production setting).
    if (options.failureRate > 0 && failureDraw(order.id, claims) < options.failureRate) {
      throw new SimulatedFailure(order.id, claims);
    }
  };
}
