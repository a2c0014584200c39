/**
 * Dead letters from a shell, through the api (so its authentication and rules apply):
 *
 *   npm run dlq -- list [--limit N]
 *   npm run dlq -- reprocess <orderId> [--reason TEXT]
 *   npm run dlq -- reprocess --all [--reason TEXT] [--batch N]
 *
 * API_URL (default http://127.0.0.1:3000) and API_KEY (an admin key, when the api has API_KEYS).
 * Exit code 0 when the command did its work, 1 otherwise.
 */
import { runDlqCli } from './lib/dlq/cli.js';

const code = await runDlqCli(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
});
// Let stdout drain (a pipe may be slow), then leave without waiting for idle keep-alive sockets.
process.stdout.write('', () => process.exit(code));
