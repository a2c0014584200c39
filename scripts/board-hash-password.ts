/**
 * Makes a dashboard account's entry for BULL_BOARD_USERS: the password's scrypt hash (Node's crypto,
 * a random salt), so the environment never holds the password itself.
 *
 *   npm run board:hash-password -- <name> <operator|viewer>       reads the password from stdin
 *
 * Prints `name:role:scrypt$…`; join several entries with commas. The password (12–256 characters)
 * is read from stdin (`printf %s "$PASSWORD" | npm run …`), never from the command line, where the
 * shell history and the process list would keep it.
 */
import { BOARD_ROLES, hashBoardPassword, OPERATOR_NAME_PATTERN, type BoardRole } from '#common';

const USAGE = 'usage: npm run board:hash-password -- <name> <operator|viewer>   (the password on stdin)';

async function readPassword(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function main(): Promise<number> {
  const [name, role, ...rest] = process.argv.slice(2);
  if (!name || !role || rest.length > 0) {
    process.stderr.write(`${USAGE}\n`);
    return 1;
  }
  if (!OPERATOR_NAME_PATTERN.test(name)) {
    process.stderr.write(`board:hash-password: the name takes 1–64 of A-Z a-z 0-9 _ . @ -\n${USAGE}\n`);
    return 1;
  }
  if (!BOARD_ROLES.includes(role as BoardRole)) {
    process.stderr.write(`board:hash-password: the role is operator or viewer, got '${role}'\n${USAGE}\n`);
    return 1;
  }
  if (process.stdin.isTTY) process.stderr.write('password (12–256 characters; shown as typed), then Enter, Ctrl-D: ');
  const password = await readPassword();
  if (password.length < 12 || password.length > 256) {
    process.stderr.write('board:hash-password: the password must be 12–256 characters\n');
    return 1;
  }
  process.stdout.write(`${name}:${role}:${await hashBoardPassword(password)}\n`);
  return 0;
}

process.exitCode = await main();
