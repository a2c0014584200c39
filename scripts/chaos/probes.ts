import { setTimeout as sleep } from 'node:timers/promises';
import { send } from './load.js';

/** One probe: when it was sent, what it answered (0: no answer in time), how long it took. */
export interface ProbeSample {
  readonly at: number;
  readonly status: number;
  readonly ms: number;
}

/**
 * Calls `url` every `intervalMs` (as a kubelet would a readiness or liveness probe) until
 * {@link Prober.stop}, at most `maxSamples` times. Each probe has a client timeout of its own.
 */
export class Prober {
  readonly samples: ProbeSample[] = [];
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    readonly url: string,
    readonly intervalMs: number,
    private readonly options: { readonly timeoutMs?: number; readonly maxSamples?: number } = {},
  ) {}

  start(): this {
    this.running = true;
    this.loop = (async () => {
      const max = this.options.maxSamples ?? 2000;
      while (this.running && this.samples.length < max) {
        const next = Date.now() + this.intervalMs;
        const res = await send(this.url, { timeoutMs: this.options.timeoutMs ?? 5000 });
        this.samples.push({ at: res.start, status: res.status, ms: res.ms });
        const wait = next - Date.now();
        if (wait > 0 && this.running) await sleep(wait);
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Samples sent at or after `from` and answered before `to`. */
  window(from: number, to: number): ProbeSample[] {
    return this.samples.filter((s) => s.at >= from && s.at + s.ms < to);
  }

  /** Time from `from` until the first probe sent at or after it that answered `status`; undefined when none did. */
  firstAfter(from: number, status: number): number | undefined {
    const hit = this.samples.find((s) => s.at >= from && s.status === status);
    return hit ? hit.at + hit.ms - from : undefined;
  }
}
