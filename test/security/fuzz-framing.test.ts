import { connect } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import test from 'ava';
import fc from 'fast-check';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { validOrder } from '../helpers/api-http.js';

/*
 * Property-based battery for what wraps a body: Content-Encoding (right, wrong, truncated, unknown,
 * stacked) and transfer framing (Content-Length, chunked in random pieces, malformed chunk sizes).
 * Whatever the client sends, the api answers a 2xx or a 4xx (in the documented error shape when it
 * comes from the app), never a 5xx, and never leaves the request without an answer.
 * FUZZ_SEED=<n> replays a run; FUZZ_SCALE=<k> runs k times as many.
 */

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const RUNS = Math.ceil(150 * (Number(process.env.FUZZ_SCALE ?? 1) || 1));

let api: TestApi;
test.before(async () => {
  api = await startTestApi('sec_fuzz_framing', { RATE_LIMIT_PER_MINUTE: '0' });
});
test.after.always(async () => {
  await api?.close();
});

const CODERS: Readonly<Record<string, (b: Buffer) => Buffer>> = {
  gzip: (b) => gzipSync(b),
  deflate: (b) => deflateSync(b),
  br: (b) => brotliCompressSync(b),
  identity: (b) => b,
};

const encodingHeader = fc.oneof(
  fc.constantFrom(
    'gzip',
    'deflate',
    'br',
    'identity',
    'x-gzip',
    'compress',
    'zstd',
    'GZIP',
    'gzip, gzip',
    'br, gzip',
    '',
  ),
  fc.stringMatching(/^[\x21-\x7e]{1,20}$/),
);
const coder = fc.constantFrom(...Object.keys(CODERS));
const damage = fc.constantFrom('none', 'truncate', 'flip', 'garbage', 'empty');

/** Sends raw bytes; resolves with the first status line's code (0 when the server closed without one). */
function send(bytes: Buffer): Promise<{ status: number; text: string }> {
  const { port } = new URL(api.baseUrl);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on('data', (c) => {
      text += c.toString('latin1');
      const head = /^HTTP\/1\.1 (\d{3})[^]*?\r\n\r\n/.exec(text);
      const length = /content-length: (\d+)/i.exec(text);
      if (head && length && text.length >= head[0].length + Number(length[1])) socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
    socket.write(bytes);
  });
}

function chunked(body: Buffer, cuts: number[], badSize: string | null): Buffer {
  const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let at = 0;
  for (const p of [...points, body.length]) {
    if (p <= at) continue;
    const piece = body.subarray(at, p);
    parts.push(Buffer.from(`${badSize ?? piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
    at = p;
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

test.serial(
  'when bodies come in any content encoding and framing, then the api answers 2xx or 4xx, never 5xx',
  async (t) => {
    await fc.assert(
      fc.asyncProperty(
        encodingHeader,
        coder,
        damage,
        fc.boolean(),
        fc.array(fc.nat(4000), { maxLength: 6 }),
        fc.option(fc.constantFrom('zz', '-1', 'ffffffffffffffffffff', '1;ext=1', ' 2', '0x10'), { nil: null }),
        async (encoding, coderName, harm, useChunked, cuts, badSize) => {
          let body = CODERS[coderName](Buffer.from(JSON.stringify(validOrder())));
          if (harm === 'truncate') body = body.subarray(0, Math.floor(body.length / 2));
          if (harm === 'flip') body = Buffer.from(body.map((b, i) => (i % 7 === 3 ? b ^ 0xff : b)));
          if (harm === 'garbage') body = Buffer.from(cuts.map((c) => c % 256));
          if (harm === 'empty') body = Buffer.alloc(0);
          const head = [
            'POST /orders HTTP/1.1',
            'Host: fuzz',
            'Content-Type: application/json',
            'Connection: close',
            ...(encoding ? [`Content-Encoding: ${encoding}`] : []),
            useChunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`,
          ].join('\r\n');
          const framed = useChunked ? chunked(body, cuts, badSize) : body;
          const { status, text } = await send(Buffer.concat([Buffer.from(`${head}\r\n\r\n`), framed]));
          const label = `${encoding}/${coderName}/${harm}/${useChunked ? `chunked ${badSize ?? ''}` : 'length'}`;
          if (!(status >= 200 && status < 500)) {
            t.fail(`${label}: answered ${status || 'nothing'}: ${text.slice(0, 300)}`);
            return false;
          }
          // Answers from the app (not Node's own 400 for broken framing) carry the documented shape.
          if (status >= 400 && /x-request-id/i.test(text) && !/"error":\{"code":"[A-Z_]+"/.test(text)) {
            t.fail(`${label}: ${status} without the documented error shape: ${text.slice(0, 300)}`);
            return false;
          }
          return true;
        },
      ),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    t.pass();
  },
);
