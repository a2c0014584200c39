import { createHash } from 'node:crypto';

/**
 * A number in [0, 1) fixed by the order id and its claim count (the `attempts` it shows), so a simulated
 * provider failure is reproducible (failures are deterministic per order id and attempt).
 */
export function failureDraw(orderId: string, claims: number): number {
  const digest = createHash('sha256').update(`${orderId}:${claims}`).digest();
  return digest.readUInt32BE(0) / 0x1_0000_0000;
}
