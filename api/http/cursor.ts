import { AppError, isOrderId } from '#common';

/** A keyset position: the last order of a page (newest first: createdAt desc, id desc). */
export interface PageCursor {
  readonly createdAt: Date;
  readonly id: string;
}

export function encodeCursor(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt.getTime(), cursor.id])).toString('base64url');
}

/** Decodes an opaque cursor; anything not made by {@link encodeCursor} is a 400. */
export function decodeCursor(raw: string): PageCursor {
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
      return { createdAt: new Date(parsed[0] as number), id: parsed[1] };
    }
  } catch {
    // fall through to the validation error
  }
  throw new AppError('VALIDATION_ERROR', 'the request is not valid', {
    details: [{ field: 'cursor', message: 'cursor is not a value this API returned' }],
  });
}
