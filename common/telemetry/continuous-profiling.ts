import { hostname } from 'node:os';

/** What {@link startContinuousProfiling} started. */
export interface ContinuousProfiling {
  readonly enabled: boolean;
  /** Pushes the profile being collected and stops; bounded by `timeoutMs` (default 2000). A no-op when off. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface ContinuousProfilingOptions {
  /** `api`, `worker` or `health`: the `service` tag, and the application name `order-fleet.<service>`. */
  readonly service: string;
  /** PYROSCOPE_SERVER_ADDRESS (e.g. `http://pyroscope:4040`). Unset or empty: off, and nothing is loaded. */
  readonly serverAddress: string | undefined;
  /** The `instance` tag; default `<hostname>:<pid>` (the pod name on Kubernetes, the container id in compose). */
  readonly instance?: string;
}

const OFF: ContinuousProfiling = Object.freeze({ enabled: false, stop: async () => undefined });
/** Characters Pyroscope refuses in a tag value. */
const TAG_UNSAFE = /[{},=]/g;

/**
 * Continuous profiling: with a Pyroscope server address, `@pyroscope/nodejs` (V8's wall-clock profiler,
 * with CPU time when PYROSCOPE_WALL_COLLECT_CPU_TIME=true, and the sampling heap profiler) pushes a profile every PYROSCOPE_FLUSH_INTERVAL_MS
 * (its default: 60 s), tagged `service` and `instance`. Without one, nothing is loaded: the package
 * and its native part (`@datadog/pprof`) are imported dynamically, only here. The package reads its
 * other settings from its own `PYROSCOPE_*` variables (auth token, sampling intervals).
 *
 * A bad address throws (the process stops with the reason, as for any bad setting); a package that
 * cannot load on this platform is reported on stderr and the process runs without profiling.
 */
export async function startContinuousProfiling(options: ContinuousProfilingOptions): Promise<ContinuousProfiling> {
  if (!options.serverAddress) return OFF;
  let url: URL | undefined;
  try {
    url = new URL(options.serverAddress);
  } catch {
    url = undefined;
  }
  // The value may hold credentials: the message names the variable, not the value.
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new Error('PYROSCOPE_SERVER_ADDRESS must be an http:// or https:// URL (the Pyroscope server)');
  }
  let Pyroscope: typeof import('@pyroscope/nodejs').default;
  try {
    Pyroscope = (await import('@pyroscope/nodejs')).default;
  } catch (err) {
    process.stderr.write(
      `${options.service}: continuous profiling is off, @pyroscope/nodejs did not load: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    return OFF;
  }
  const instance = (options.instance ?? `${hostname()}:${process.pid}`).replace(TAG_UNSAFE, '_');
  Pyroscope.init({
    serverAddress: url.href.replace(/\/+$/, ''),
    appName: `order-fleet.${options.service}`,
    tags: { service: options.service, instance },
  });
  Pyroscope.start();
  return {
    enabled: true,
    stop: (timeoutMs = 2000) =>
      Promise.race([
        Pyroscope.stop().catch(() => undefined),
        new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref()),
      ]),
  };
}

/**
 * What every process's `instrument.ts` does: {@link startContinuousProfiling}, or, when its
 * configuration is wrong, the reason on stderr and exit 78 (EX_CONFIG, as for any bad setting).
 */
export async function instrumentProfiling(options: ContinuousProfilingOptions): Promise<ContinuousProfiling> {
  try {
    return await startContinuousProfiling(options);
  } catch (err) {
    process.stderr.write(`${options.service}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(78);
  }
}
