import type { MongoChoice } from './private-services.js';

/** What a scenario tells the person watching while it runs. */
export interface Progress {
  /** A new phase (`load`, `Redis stopped`, `recovery` …) with `total` steps (0: no bar). */
  phase(name: string, total?: number): void;
  /** Steps done in the current phase, and a short detail (e.g. `201×40 202×12`). */
  update(value: number, detail?: string): void;
  /** A line that stays on screen (a fault injected, a process killed). */
  log(line: string): void;
}

/** Progress that shows nothing (the tests). */
export const silentProgress: Progress = { phase: () => undefined, update: () => undefined, log: () => undefined };

/** What every scenario is given. */
export interface ScenarioContext {
  readonly progress: Progress;
  /** Aborted on Ctrl-C: the scenario stops waiting, cleans up and reports an error. */
  readonly signal: AbortSignal;
  /** Which private MongoDB to start. */
  readonly mongo: MongoChoice;
  /** Variables added to every process's environment (after the scenario's own). */
  readonly env: Readonly<Record<string, string>>;
  /** Where to write each process's full output; nothing is written when unset. */
  readonly logDir?: string;
}

/** One pass-line condition and what was measured against it. */
export interface Check {
  readonly name: string;
  readonly pass: boolean;
  readonly actual: string;
}

/** The figures every scenario fills where they apply (the summary table's columns). */
export interface Summary {
  accepted?: number;
  lost?: number;
  duplicateEffects?: number;
  p99Ms?: number;
  /** Longest time until the system was whole again (orders settled, readiness back …). */
  recoverMs?: number;
  /** 5xx answers and requests never answered (a number, or a note such as `373 (all 503)`). */
  fiveXx?: number | string;
  exitCodes?: string;
}

export interface ScenarioResult {
  readonly id: number;
  readonly title: string;
  readonly fault: string;
  readonly passLine: string;
  readonly mongo: string;
  readonly summary: Summary;
  /** Further figures, in the order they were measured. */
  readonly figures: ReadonlyArray<readonly [string, string]>;
  readonly checks: readonly Check[];
  /** Log lines that explain a failure (empty when all passed). */
  readonly evidence: readonly string[];
  readonly error?: string;
  readonly durationMs: number;
  readonly pass: boolean;
}

/** A scenario of the battery: its sizes for the script (`full`) and for the tests (`quick`). */
export interface Scenario<S> {
  readonly id: number;
  readonly title: string;
  readonly fault: (sizes: S) => string;
  readonly passLine: string;
  readonly sizes: { readonly full: S; readonly quick: S };
  run(ctx: ScenarioContext, sizes: S): Promise<ScenarioResult>;
}
