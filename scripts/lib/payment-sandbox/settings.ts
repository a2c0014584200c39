import Joi from 'joi';

/**
 * How the sandbox misbehaves. Every field can be set at start (PAYMENT_SANDBOX_* variables) and
 * changed at run time through `PUT /_settings`; the control routes (`/_settings`, `/_stats`) are never
 * affected, so a sandbox taken down can always be brought back.
 */
export interface SandboxSettings {
  /** Added before every provider call is answered: a fixed delay, or a uniform draw from [min, max]. */
  readonly latencyMs: number | readonly [number, number];
  /** Fraction of provider calls answered 500, decided before any effect (a 500 never leaves a charge). */
  readonly failureRate: number;
  /**
   * `503`: every provider call is answered 503. `reset`: the connection is dropped without an answer,
   * which a client sees as a network error, as it would a refused connection or a crashed provider
   * (a listening server cannot refuse; stop the process for a true ECONNREFUSED).
   */
  readonly outage: 'none' | '503' | 'reset';
  /**
   * The unknown-outcome case: charges and refunds are made at once, but their answer is held this long
   * (set it past the caller's timeout). 0 = off. Reads (`GET /charges`) are never slowed, so a caller
   * can find out what happened.
   */
  readonly slowMs: number;
}

export const DEFAULT_SANDBOX_SETTINGS: SandboxSettings = Object.freeze({
  latencyMs: 0,
  failureRate: 0,
  outage: 'none',
  slowMs: 0,
});

const MAX_DELAY_MS = 600_000;
const delay = Joi.number().integer().min(0).max(MAX_DELAY_MS);
// `50` or `20-200` in the environment; 50 or [20, 200] in JSON.
const LATENCY_RANGE = /^(\d+)\s*-\s*(\d+)$/;

const patchSchema = Joi.object({
  latencyMs: Joi.alternatives(
    delay,
    Joi.array().ordered(delay.required(), delay.required()).length(2),
    Joi.string().pattern(LATENCY_RANGE),
  ),
  failureRate: Joi.number().min(0).max(1),
  outage: Joi.string().valid('none', '503', 'reset'),
  slowMs: delay,
}).unknown(false);

/** A bad setting (from the environment or `PUT /_settings`); `problems` names each one. */
export class SandboxSettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid payment sandbox settings:\n  - ${problems.join('\n  - ')}`);
    this.name = 'SandboxSettingsError';
  }
}

/** Validates a partial update and returns the settings it produces from `current`. */
export function applySettingsPatch(current: SandboxSettings, patch: unknown): SandboxSettings {
  const { value, error } = patchSchema.validate(patch ?? {}, { abortEarly: false, convert: true });
  if (error) throw new SandboxSettingsError(error.details.map((d) => d.message));
  const v = value as { latencyMs?: number | string | [number, number] } & Partial<Omit<SandboxSettings, 'latencyMs'>>;
  const latencyMs = v.latencyMs === undefined ? current.latencyMs : toLatency(v.latencyMs);
  if (Array.isArray(latencyMs) && latencyMs[0] > latencyMs[1]) {
    throw new SandboxSettingsError(['latencyMs range must be [min, max] with min <= max']);
  }
  return Object.freeze({
    latencyMs,
    failureRate: v.failureRate ?? current.failureRate,
    outage: v.outage ?? current.outage,
    slowMs: v.slowMs ?? current.slowMs,
  });
}

/**
 * The settings at start: `PAYMENT_SANDBOX_LATENCY_MS` (`50` or `20-200`), `PAYMENT_SANDBOX_FAILURE_RATE`,
 * `PAYMENT_SANDBOX_OUTAGE` (`none`, `503`, `reset`), `PAYMENT_SANDBOX_SLOW_MS`. Empty counts as unset.
 */
export function sandboxSettingsFromEnv(env: NodeJS.ProcessEnv): SandboxSettings {
  const pick = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const patch = Object.fromEntries(
    Object.entries({
      latencyMs: pick('PAYMENT_SANDBOX_LATENCY_MS'),
      failureRate: pick('PAYMENT_SANDBOX_FAILURE_RATE'),
      outage: pick('PAYMENT_SANDBOX_OUTAGE'),
      slowMs: pick('PAYMENT_SANDBOX_SLOW_MS'),
    }).filter(([, value]) => value !== undefined),
  );
  return applySettingsPatch(DEFAULT_SANDBOX_SETTINGS, patch);
}

function toLatency(raw: number | string | [number, number]): number | readonly [number, number] {
  if (typeof raw === 'number') return raw;
  if (Array.isArray(raw)) return Object.freeze([raw[0], raw[1]] as const);
  const match = LATENCY_RANGE.exec(raw);
  // The schema admitted only this pattern for strings.
  const [min, max] = [Number(match?.[1]), Number(match?.[2])];
  if (max > MAX_DELAY_MS) throw new SandboxSettingsError([`latencyMs must be at most ${MAX_DELAY_MS}`]);
  return min === max ? min : Object.freeze([min, max] as const);
}

/** One latency draw from the settings. */
export function drawLatency(latency: SandboxSettings['latencyMs'], random: () => number): number {
  if (typeof latency === 'number') return latency;
  const [min, max] = latency;
  return Math.round(min + (max - min) * random());
}
