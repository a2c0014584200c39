import { Writable } from 'node:stream';
import test from 'ava';
import { createLogContext, createLogger } from '#common';
import type { AuditEvent, AuditRepository } from '../../api/repositories/audit-repository.js';
import { createAuditLog } from '../../api/services/audit-service.js';

test('when the audit store refuses a record, then the audit log line is still written with audit: true', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger({ service: 'test', level: 'info', context: createLogContext(), destination });
  const stored: AuditEvent[] = [];
  let refuse = false;
  const repository = {
    insert: async (e: AuditEvent) => {
      if (refuse) throw new Error('MongoDB is away');
      stored.push(e);
    },
    list: async () => ({ items: [], hasMore: false }),
    ensureIndexes: async () => undefined,
  } as unknown as AuditRepository;
  const audit = createAuditLog({ repository, logger, now: () => new Date('2026-12-01T00:00:00Z') });
  const event = {
    actor: 'vic',
    role: 'viewer',
    source: 'board',
    action: 'board.retry',
    outcome: 'refused',
    status: 403,
  } as const;

  await audit.record(event);
  refuse = true;
  await audit.record({ ...event, actor: 'olga' });

  t.is(stored.length, 1);
  const auditLines = lines.filter((l) => l.audit === true && String(l.msg).startsWith('audit: board.retry'));
  t.is(auditLines.length, 2);
  t.like(auditLines[1], { actor: 'olga', outcome: 'refused', status: 403, at: '2026-12-01T00:00:00.000Z' });
  t.true(lines.some((l) => l.msg === 'audit record not stored' && l.actor === 'olga'));
});
