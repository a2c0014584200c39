import { prettyFactory } from 'pino-pretty';

/** Foreground colours (ANSI SGR codes) handed out in order: cyan, magenta, yellow, green, blue, grey. */
const PALETTE = ['36', '35', '33', '32', '34', '90'];

export interface Prefixer {
  /** `line` behind its process's label, e.g. `worker-1 | {...}`; the label is coloured when enabled. */
  format(name: string, line: string): string;
  /** {@link Prefixer.format} for each line of a multi-line text. */
  formatLines(name: string, text: string): string;
}

/**
 * Labels for interleaved output of several processes. Labels are padded to the longest name so the
 * lines stay aligned; only the label is coloured, so a JSON log line can still be copied as is.
 */
export function createPrefixer(names: readonly string[], options: { readonly color: boolean }): Prefixer {
  const width = Math.max(0, ...names.map((n) => n.length));
  const colours = new Map(names.map((name, i) => [name, PALETTE[i % PALETTE.length]]));
  const format = (name: string, line: string): string => {
    const label = `${name.padEnd(width)} |`;
    const colour = colours.get(name);
    return options.color && colour ? `\x1b[${colour}m${label}\x1b[0m ${line}` : `${label} ${line}`;
  };
  return {
    format,
    formatLines: (name, text) =>
      text
        .split('\n')
        .map((line) => format(name, line))
        .join('\n'),
  };
}

/** Colour for a terminal only, and never when NO_COLOR is set (https://no-color.org). */
export function colourWanted(stream: { readonly isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

/**
 * pino-pretty's human-readable form of a JSON log line (time, level, message, then the fields); any
 * other line is returned as it is. The processes always write JSON to the launcher, which reads it.
 */
export function prettyLogLine(options: { readonly color: boolean }): (line: string) => string {
  const format = prettyFactory({
    colorize: options.color,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service',
  });
  return (line) => (line.startsWith('{') ? format(line).replace(/\n$/, '') : line);
}
