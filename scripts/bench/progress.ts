import cliProgress from 'cli-progress';

/** One phase's share of the bar; `update(fraction)` moves within it. */
export interface PhaseProgress {
  update(fraction: number, detail?: string): void;
  done(): void;
}

/**
 * One overall bar for the run (phases weighted by their expected seconds), with the current phase
 * and its detail beside it. Lines logged meanwhile appear above the bar. Without a terminal the bar
 * is printed as a line every 15 s instead.
 */
export class Progress {
  private readonly multi: cliProgress.MultiBar;
  private readonly bar: cliProgress.SingleBar;
  private readonly total: number;
  private used = 0;

  constructor(totalWeight: number) {
    this.total = Math.max(1, totalWeight);
    this.multi = new cliProgress.MultiBar(
      {
        format: ' {bar} {percentage}% | {duration_formatted} | {phase}',
        barCompleteChar: '\u2588',
        barIncompleteChar: '\u2591',
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        noTTYOutput: true,
        notTTYSchedule: 15_000,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar = this.multi.create(1000, 0, { phase: 'starting' });
  }

  /** A phase worth `weight` (its expected seconds). */
  phase(label: string, weight: number): PhaseProgress {
    const base = this.used;
    const share = Math.max(0, weight);
    this.used += share;
    this.log(`▶ ${label}`);
    const set = (fraction: number, detail?: string) => {
      const value = Math.round(((base + share * Math.min(1, Math.max(0, fraction))) / this.total) * 1000);
      this.bar.update(Math.min(1000, value), { phase: detail ? `${label}: ${detail}` : label });
    };
    set(0);
    return { update: set, done: () => set(1) };
  }

  log(line: string): void {
    this.multi.log(`${line}\n`);
  }

  stop(): void {
    this.bar.update(1000, { phase: 'done' });
    this.multi.stop();
  }
}
