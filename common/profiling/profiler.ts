import { Session } from 'node:inspector/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import Joi from 'joi';
import { AppError } from '../errors/app-error.js';

/** What a profile request may ask: a CPU profile for `seconds`, or a heap snapshot now. */
export type ProfileKind = 'cpu' | 'heap';

/** Bounds of a CPU profile's duration, in seconds. */
export const PROFILE_SECONDS = { min: 1, max: 60, default: 10 } as const;

/**
 * The query of `POST /admin/profile` (api and worker metrics port alike): `kind` `cpu` (with optional
 * `seconds`) or `heap` (a snapshot is one instant: {@link parseProfileRequest} refuses `seconds` with
 * it, a rule kept out of the schema so the OpenAPI generated from it stays plain).
 */
export const profileQuerySchema = Joi.object({
  kind: Joi.string().valid('cpu', 'heap').required().description('`cpu`: a CPU profile; `heap`: a heap snapshot'),
  seconds: Joi.number()
    .integer()
    .min(PROFILE_SECONDS.min)
    .max(PROFILE_SECONDS.max)
    .description(`how long the CPU profile records (default ${PROFILE_SECONDS.default}); not with kind=heap`),
});

/** A recorded profile, ready to be sent as a download. */
export interface RecordedProfile {
  readonly kind: ProfileKind;
  /** `<service>-<pid>-<ISO time>.cpuprofile|.heapsnapshot` (no characters a Content-Disposition must quote). */
  readonly filename: string;
  readonly body: Buffer;
}

export interface Profiler {
  /**
   * Records a CPU profile for `seconds`, or takes a heap snapshot. One at a time per process: while one
   * runs another call throws `INVALID_STATE` (409). A result over the size bound throws `PAYLOAD_TOO_LARGE`.
   */
  record(request: { readonly kind: ProfileKind; readonly seconds?: number }): Promise<RecordedProfile>;
  /** True while a profile is being recorded. */
  readonly busy: boolean;
}

/**
 * The on-demand profiler of a process, through its own inspector (`node:inspector`, no debugger port is
 * opened): V8's sampling CPU profiler (a `.cpuprofile` Chrome DevTools and speedscope read) or a heap
 * snapshot (`.heapsnapshot`, DevTools' Memory tab). A heap snapshot pauses the process while V8 writes it
 * (about a second per 100 MB of heap) and holds it in memory up to `maxBytes`.
 */
export function createProfiler(deps: { readonly service: string; readonly maxBytes: number }): Profiler {
  let busy = false;

  const filename = (kind: ProfileKind) =>
    `${deps.service}-${process.pid}-${new Date().toISOString().replace(/[:.]/g, '-')}.${kind === 'cpu' ? 'cpuprofile' : 'heapsnapshot'}`;

  const tooLarge = (size: string) =>
    new AppError('PAYLOAD_TOO_LARGE', `the ${size} is larger than PROFILE_MAX_MB allows (${deps.maxBytes} bytes)`);

  async function cpuProfile(session: Session, seconds: number): Promise<Buffer> {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    await sleep(seconds * 1000);
    const { profile } = await session.post('Profiler.stop');
    const body = Buffer.from(JSON.stringify(profile));
    if (body.length > deps.maxBytes) throw tooLarge('CPU profile');
    return body;
  }

  async function heapSnapshot(session: Session): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    let overflow = false;
    session.on('HeapProfiler.addHeapSnapshotChunk', ({ params }) => {
      if (overflow) return;
      size += Buffer.byteLength(params.chunk);
      // Past the bound the rest is dropped at once: memory stays bounded while V8 finishes writing.
      if (size > deps.maxBytes) {
        overflow = true;
        chunks.length = 0;
        return;
      }
      chunks.push(Buffer.from(params.chunk));
    });
    await session.post('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    if (overflow) throw tooLarge('heap snapshot');
    return Buffer.concat(chunks);
  }

  return {
    get busy() {
      return busy;
    },
    async record({ kind, seconds = PROFILE_SECONDS.default }) {
      if (busy)
        throw new AppError('INVALID_STATE', 'a profile is already being recorded in this process; retry when it ends');
      busy = true;
      const session = new Session();
      try {
        session.connect();
        const body = kind === 'cpu' ? await cpuProfile(session, seconds) : await heapSnapshot(session);
        return { kind, filename: filename(kind), body };
      } finally {
        session.disconnect();
        busy = false;
      }
    },
  };
}

/**
 * The profile request of a query string (`?kind=cpu&seconds=30`), validated by
 * {@link profileQuerySchema}; a bad one throws `VALIDATION_ERROR` naming every offending parameter.
 */
export function parseProfileRequest(query: Record<string, unknown>): { kind: ProfileKind; seconds?: number } {
  const { value, error } = profileQuerySchema.validate(query, {
    abortEarly: false,
    errors: { wrap: { label: false } },
  });
  if (error) {
    throw new AppError('VALIDATION_ERROR', 'the profile request is not valid', {
      details: error.details.map((d) => ({ field: d.path.join('.') || 'query', message: d.message })),
    });
  }
  const request = value as { kind: ProfileKind; seconds?: number };
  if (request.kind === 'heap' && request.seconds !== undefined) {
    throw new AppError('VALIDATION_ERROR', 'the profile request is not valid', {
      details: [{ field: 'seconds', message: 'a heap snapshot is taken at once: seconds goes with kind=cpu only' }],
    });
  }
  return request;
}

/** `Content-Disposition` of a recorded profile: a download under its own name. */
export function profileDisposition(profile: RecordedProfile): string {
  return `attachment; filename="${profile.filename}"`;
}
