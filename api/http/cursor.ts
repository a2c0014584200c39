import { AppError, isOrderId } from '#common';

/**
 * A keyset position: the last row of a page, named by the field its listing sorts on (newest first,
 * the id breaking ties). Each listing has its own shape, so a dead-letter position says `failedAt`.
 */
export type PageCursor<K extends string> = { readonly [P in K]: Date } & { readonly id: string };

/** GET /orders sorts on `createdAt` desc, `id` desc. */
export type OrderPageCursor = PageCursor<'createdAt'>;
/** GET /dlq sorts on `failedAt` desc, `id` desc. */
export type DlqPageCursor = PageCursor<'failedAt'>;

/** Turns a listing's position into the opaque `nextCursor` text and back. */
export interface CursorCodec<K extends string> {
  encode(position: PageCursor<K>): string;
  /** Anything {@link encode} did not make is a 400 VALIDATION_ERROR on field `cursor`. */
  decode(raw: string): PageCursor<K>;
}

/**
 * The codec of a listing sorted on `field`. The text is `[ms, id]` in base64url whatever the field: the
 * name is the listing's, the wire format is shared (and unchanged for cursors already handed out).
 */
export function createCursorCodec<K extends string>(field: K): CursorCodec<K> {
  return {
    encode: (position) => Buffer.from(JSON.stringify([position[field].getTime(), position.id])).toString('base64url'),
    decode(raw) {
      const [at, id] = decodePosition(raw);
      return { [field]: at, id } as PageCursor<K>;
    },
  };
}

export const orderCursor: CursorCodec<'createdAt'> = createCursorCodec('createdAt');
export const dlqCursor: CursorCodec<'failedAt'> = createCursorCodec('failedAt');

function decodePosition(raw: string): [Date, string] {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      Number.isSafeInteger(parsed[0]) &&
      // A Date holds ±8.64e15 ms; anything beyond is no cursor this API made.
      Math.abs(parsed[0] as number) <= 8.64e15 &&
      typeof parsed[1] === 'string' &&
      isOrderId(parsed[1])
    ) {
      return [new Date(parsed[0] as number), parsed[1]];
    }
  } catch {
    // fall through to the validation error
  }
  throw new AppError('VALIDATION_ERROR', 'the request is not valid', {
    details: [{ field: 'cursor', message: 'cursor is not a value this API returned' }],
  });
}
