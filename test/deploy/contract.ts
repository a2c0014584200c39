import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig, type Config } from '#common';
import { REPO_ROOT } from '../../scripts/lib/process-runner.js';

/** A file of the repository, as text. */
export async function repoFile(path: string): Promise<string> {
  return readFile(join(REPO_ROOT, path), 'utf8');
}

/**
 * The environment variable names of the config schema, read from the source of
 * common/config/config.ts (the keys of its `Joi.object({ … })`), so a name the deploy files use
 * and the code does not know fails here.
 */
export async function schemaNames(): Promise<Set<string>> {
  const source = await repoFile('common/config/config.ts');
  const start = source.indexOf('Joi.object({');
  const end = source.indexOf('\n})', start);
  if (start < 0 || end < 0) throw new Error('common/config/config.ts: no Joi.object({ … }) schema found');
  const names = [...source.slice(start, end).matchAll(/^\s+([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]);
  if (names.length < 10) throw new Error(`common/config/config.ts: only ${names.length} schema keys found`);
  return new Set(names);
}

/** The defaults the code runs with when nothing is set. */
export function defaults(): Config {
  return loadConfig({});
}

/** `KEY=value` lines of an env file, commented-out assignments (`# KEY=`) included. */
export function envFileEntries(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^#?\s*([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) entries.set(m[1], m[2].trim());
  }
  return entries;
}
