import { koaBody } from 'koa-body';
import type { Middleware } from 'koa';

/**
 * The api's one body parser: JSON objects or arrays only (`jsonStrict`), at most `bodyLimit`, and
 * nothing else parsed (no forms, text or uploads). Errors reach the error middleware as 400/413.
 */
export function createJsonBody(bodyLimit: string): Middleware {
  return koaBody({
    json: true,
    jsonStrict: true,
    jsonLimit: bodyLimit,
    urlencoded: false,
    text: false,
    multipart: false,
    patchNode: false,
  });
}
