import { watch as watchFiles, type FSWatcher } from 'node:fs';
import { sep } from 'node:path';
import type { ServiceName } from './process-runner.js';

/**
 * Watch mode of the dev launcher (`npm run dev`): which compiled files belong to which process, and
 * a debounced watch of `dist/` that reports the processes a rebuild touched.
 */

const SERVICES: readonly ServiceName[] = ['api', 'worker', 'health'];

/**
 * The processes that run a compiled file (a path relative to `dist/`): its own process for
 * `api/`, `worker/`, `health/`; all three for `common/`; none for anything else (tests, scripts,
 * source maps).
 */
export function servicesOf(relativePath: string): readonly ServiceName[] {
  if (!relativePath.endsWith('.js')) return [];
  const top = relativePath.split(sep)[0];
  if (top === 'common') return SERVICES;
  return SERVICES.filter((s) => s === top);
}

export interface DistWatch {
  close(): void;
}

/**
 * Watches `distDir` (recursively) and calls `onChange` with the processes whose files changed, once
 * no change came for `debounceMs` (tsc writes a rebuild's files one by one). While `paused()` holds,
 * changes are dropped (tsc's first full emit in watch mode rewrites every file).
 */
export function watchDist(options: {
  readonly distDir: string;
  readonly debounceMs?: number;
  readonly paused?: () => boolean;
  readonly onChange: (services: ReadonlySet<ServiceName>, files: readonly string[]) => void;
}): DistWatch {
  const pending = new Set<ServiceName>();
  const files = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    if (pending.size === 0) return;
    const services = new Set(pending);
    const changed = [...files];
    pending.clear();
    files.clear();
    options.onChange(services, changed);
  };
  const watcher: FSWatcher = watchFiles(options.distDir, { recursive: true }, (_event, file) => {
    if (!file || options.paused?.()) return;
    const services = servicesOf(file.toString());
    if (services.length === 0) return;
    for (const s of services) pending.add(s);
    files.add(file.toString());
    clearTimeout(timer);
    timer = setTimeout(flush, options.debounceMs ?? 300);
  });
  watcher.on('error', () => undefined); // a directory removed under the watch (npm run clean)
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
