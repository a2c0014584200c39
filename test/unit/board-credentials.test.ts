import test from 'ava';
import { hashBoardPassword, verifyBoardPassword } from '#common';
import { boardAction } from '../../api/http/admin-board.js';
import { createBoardCredentials } from '../../api/http/board-auth.js';

test('when a password is hashed, then only that password verifies, and a malformed or costly hash never does', async (t) => {
  const hash = await hashBoardPassword('a-long-enough-password');
  t.regex(hash, /^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  t.not(await hashBoardPassword('a-long-enough-password'), hash, 'a fresh salt each time');
  t.true(await verifyBoardPassword('a-long-enough-password', hash));
  t.false(await verifyBoardPassword('a-long-enough-passwore', hash));
  t.false(await verifyBoardPassword('a-long-enough-password', hash.slice(0, -2)));
  t.false(await verifyBoardPassword('a-long-enough-password', hash.replace('16384', '16383')), 'N not a power of 2');
  t.false(await verifyBoardPassword('a-long-enough-password', hash.replace('$8$', '$99$')), 'over the memory bound');
});

test('when credentials are checked, then the shared login is an operator, named accounts carry their role, and anything else is refused', async (t) => {
  const accounts = [
    { name: 'alice', role: 'operator' as const, passwordHash: await hashBoardPassword('alice-password-1') },
    { name: 'bob', role: 'viewer' as const, passwordHash: await hashBoardPassword('bob-password-22') },
  ];
  const check = createBoardCredentials({ user: 'ops', password: 'shared-password-1', accounts });
  t.deepEqual(await check('ops', 'shared-password-1'), { name: 'ops', role: 'operator' });
  t.deepEqual(await check('alice', 'alice-password-1'), { name: 'alice', role: 'operator' });
  t.deepEqual(await check('bob', 'bob-password-22'), { name: 'bob', role: 'viewer' });
  t.deepEqual(await check('bob', 'bob-password-22'), { name: 'bob', role: 'viewer' }, 'remembered, same answer');
  for (const [user, password] of [
    ['bob', 'alice-password-1'],
    ['alice', 'bob-password-22'],
    ['carol', 'bob-password-22'],
    ['ops', 'alice-password-1'],
    ['', ''],
  ]) {
    t.is(await check(user, password), undefined, `${user}:${password}`);
  }
  const sharedOnly = createBoardCredentials({ user: 'ops', password: 'shared-password-1', accounts: [] });
  t.is(await sharedOnly('alice', 'alice-password-1'), undefined);
  const namedOnly = createBoardCredentials({ accounts });
  t.is(await namedOnly('ops', 'shared-password-1'), undefined);
});

test('when a board route is named for the audit, then job and queue-wide actions are told apart', (t) => {
  t.is(boardAction('/api/queues/:queueName/:jobId/retry'), 'board.retry');
  t.is(boardAction('/api/queues/:queueName/retry/:queueStatus'), 'board.retry-all');
  t.is(boardAction('/api/queues/:queueName/:jobId/clean'), 'board.remove');
  t.is(boardAction('/api/queues/:queueName/clean/:queueStatus'), 'board.clean-all');
  t.is(boardAction('/api/queues/:queueName/:jobId/promote'), 'board.promote');
  t.is(boardAction('/api/queues/:queueName/promote'), 'board.promote-all');
  t.is(boardAction('/api/queues/:queueName/pause'), 'board.pause');
  t.is(boardAction('/api/queues/pause'), 'board.pause-all');
  t.is(boardAction('/api/queues/:queueName/:jobId/update-data'), 'board.update-data');
  t.is(boardAction('/api/queues/:queueName/job-schedulers/:schedulerId/run'), 'board.job-schedulers-run');
  t.is(boardAction(undefined), 'board.change');
});
