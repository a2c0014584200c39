import { Writable } from 'node:stream';
import test from 'ava';
import { createLogContext, createLogger } from '#common';

test("when a line with its own fields is logged inside a request's context, then later lines of that request do not carry them", async (t) => {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const context = createLogContext();
  const logger = createLogger({ service: 'test', level: 'info', context, destination });

  await context.run({ requestId: 'req-1' }, async () => {
    logger.info({ audit: true, actor: 'olga' }, 'audit: processing.pause by olga done');
    logger.info({ status: 200 }, 'request');
  });

  t.like(lines[0], { requestId: 'req-1', audit: true, actor: 'olga' });
  t.like(lines[1], { requestId: 'req-1', status: 200, msg: 'request' });
  t.false('audit' in lines[1], 'the audit field stayed on its own line');
  t.false('actor' in lines[1]);
});
