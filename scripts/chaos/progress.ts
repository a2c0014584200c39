import cliProgress from 'cli-progress';
import type { Progress } from './types.js';

/** A progress display for one run of the battery; `close` before printing the report. */
export interface ProgressDisplay {
  /** The progress of scenario `label`. */
  forScenario(label: string): Progress;
  close(): void;
}

/**
 * On a terminal, one live bar (cli-progress) per run with the current scenario, phase and figures;
 * lines logged meanwhile scroll above it. Anywhere else (CI, a pipe) plain lines: one per phase and
 * one every `intervalMs` at most.
 */
export function createProgressDisplay(options: {
  readonly stream: NodeJS.WriteStream;
  readonly intervalMs?: number;
}): ProgressDisplay {
  const { stream } = options;
  if (stream.isTTY) {
    const multibar = new cliProgress.MultiBar(
      {
        stream,
        format: ' {scenario} |{bar}| {value}/{total} {phase} {detail}',
        barsize: 24,
        hideCursor: true,
        clearOnComplete: true,
        stopOnComplete: false,
        autopadding: true,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    let bar: cliProgress.SingleBar | undefined;
    return {
      forScenario(label) {
        bar ??= multibar.create(1, 0, { scenario: label, phase: '', detail: '' });
        bar.update(0, { scenario: label, phase: 'starting', detail: '' });
        return {
          phase(name, total = 0) {
            bar?.setTotal(Math.max(total, 1));
            bar?.update(0, { scenario: label, phase: name, detail: '' });
          },
          update(value, detail = '') {
            bar?.update(value, { detail });
          },
          log(line) {
            multibar.log(`  ${label}: ${line}\n`);
          },
        };
      },
      close() {
        multibar.stop();
      },
    };
  }

  const intervalMs = options.intervalMs ?? 5000;
  return {
    forScenario(label) {
      let phase = '';
      let total = 0;
      let lastPrint = 0;
      const print = (text: string) => stream.write(`[chaos] ${label} ${text}\n`);
      return {
        phase(name, steps = 0) {
          phase = name;
          total = steps;
          lastPrint = Date.now();
          print(`${name}${steps ? ` (0/${steps})` : ''}`);
        },
        update(value, detail = '') {
          if (Date.now() - lastPrint < intervalMs) return;
          lastPrint = Date.now();
          print(`${phase}: ${value}${total ? `/${total}` : ''}${detail ? ` ${detail}` : ''}`);
        },
        log(line) {
          print(line);
        },
      };
    },
    close: () => undefined,
  };
}
