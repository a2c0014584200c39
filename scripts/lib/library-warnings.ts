/**
 * Runs `work` while holding back `console.warn` calls that carry an Error, and turns them into
 * `cause:` lines (message only, no stack) of `work`'s error when it fails.
 *
 * Why: mongodb-memory-server warns with a full stack trace when mongod cannot start, then throws;
 * the caller turns that into one message that says what to do, and the warning's message (such as
 * `getaddrinfo ENOTFOUND fastdl.mongodb.org`) is the useful part of the stack. Plain-text warnings
 * go to `print` as they come, and held-back ones too (message only) when `work` succeeds.
 */
export async function withWarningsAsCauses<T>(work: () => Promise<T>, print: (text: string) => void): Promise<T> {
  const causes: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => {
    const errors = args.filter((a): a is Error => a instanceof Error);
    if (errors.length === 0) print(args.map(String).join(' '));
    for (const err of errors) causes.push(err.message.trim());
  };
  try {
    const result = await work();
    for (const cause of causes) print(`warning: ${cause}`);
    return result;
  } catch (err) {
    if (causes.length === 0) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new Error([message, ...causes.map((c) => `cause: ${c}`)].join('\n'));
  } finally {
    console.warn = original;
  }
}
