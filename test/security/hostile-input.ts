/**
 * Generators of hostile JSON for the security battery, and an oracle for the order rules of
 * docs/design.md written independently of the api's joi schema (so a schema bug shows up as a disagreement).
 *
 * Bodies are built as a small JSON syntax tree and rendered to text by hand: that is the only way to
 * send what JSON.stringify cannot produce (own `__proto__` keys, duplicate keys, `-0`, `1e400`,
 * 2**53 + 1 written out, 1000 levels of nesting) while every string stays valid JSON text (lone
 * surrogates travel as `\ud800` escapes, which JSON allows).
 */
import fc from 'fast-check';

export type Json =
  | { readonly kind: 'raw'; readonly text: string }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'array'; readonly items: readonly Json[] }
  | { readonly kind: 'object'; readonly entries: ReadonlyArray<readonly [string, Json]> }
  | {
      readonly kind: 'deep';
      readonly depth: number;
      readonly shape: 'array' | 'object';
      readonly key: string;
      readonly inner: Json;
    };

/** JSON text of a tree; JSON.stringify escapes lone surrogates and control characters in strings. */
export function render(j: Json): string {
  switch (j.kind) {
    case 'raw':
      return j.text;
    case 'string':
      return JSON.stringify(j.value);
    case 'array':
      return `[${j.items.map(render).join(',')}]`;
    case 'object':
      return `{${j.entries.map(([k, v]) => `${JSON.stringify(k)}:${render(v)}`).join(',')}}`;
    case 'deep': {
      const open = j.shape === 'array' ? '[' : `{${JSON.stringify(j.key)}:`;
      const close = j.shape === 'array' ? ']' : '}';
      return `${open.repeat(j.depth)}${render(j.inner)}${close.repeat(j.depth)}`;
    }
  }
}

/** The tree of a plain JS value (numbers written with String(), so -0 stays "0" as JSON does). */
export function fromValue(value: unknown): Json {
  if (typeof value === 'string') return { kind: 'string', value };
  if (Array.isArray(value)) return { kind: 'array', items: value.map(fromValue) };
  if (value !== null && typeof value === 'object') {
    return { kind: 'object', entries: Object.entries(value).map(([k, v]) => [k, fromValue(v)] as const) };
  }
  return { kind: 'raw', text: JSON.stringify(value) ?? 'null' };
}

// ---------------------------------------------------------------------------------------------
// Leaves: characters, strings, numbers, keys, operator objects
// ---------------------------------------------------------------------------------------------

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const specialChar = fc.constantFrom(
  '\u0000',
  '\u0001',
  '\u001f',
  '\u007f',
  '\u202e', // right-to-left override
  '\u200f', // right-to-left mark
  '\u061c', // arabic letter mark
  '\u05d0', // hebrew alef
  '\ufeff',
  '\u2028',
  '\u2029',
  '\uffff',
  '\ufffd',
  '\u{1F600}', // astral (a surrogate pair)
  '\u{1D54F}',
  'e\u0301', // combining accent
  '$',
  '.',
  '"',
  '\\',
  '/',
  '%',
  '\n',
  '\t',
);
/** One hostile character: any code point, a lone surrogate, or one of the usual troublemakers. */
export const hostileChar = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  loneSurrogate,
  specialChar,
  fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 }),
);

const notableStrings = [
  '',
  ' ',
  'null',
  'true',
  '0',
  '-0',
  '1e308',
  'NaN',
  'Infinity',
  '__proto__',
  'constructor',
  'prototype',
  '$where',
  '$ne',
  '$gt',
  'sleep(1000)',
  'function () { return true }',
  '{"$ne":null}',
  "'; db.dropDatabase(); '",
  '<script>alert(1)</script>',
  '../../etc/passwd',
  'EUR',
  'eur',
  'c-42',
  'SKU-1',
  'PENDING',
  'PROCESSED',
  `ord_${'0'.repeat(32)}`,
] as const;

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: hostileChar, maxLength: 24 }) },
  { weight: 2, arbitrary: fc.constantFrom(...notableStrings) },
  { weight: 1, arbitrary: fc.string({ unit: hostileChar, minLength: 250, maxLength: 700 }) },
);

/** Number literals as JSON text: huge, tiny, negative zero, unsafe integers, fractions. */
export const rawNumber: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '0',
    '-0',
    '1',
    '-1',
    '1.0',
    '1e0',
    '1.5',
    '0.1',
    '1e308',
    '-1e308',
    '1.7976931348623157e308',
    '1e309',
    '1e400',
    '-1e400',
    '5e-324',
    '1e-400',
    '9007199254740991',
    '9007199254740992',
    '9007199254740993',
    '-9007199254740993',
    '18446744073709551616',
    '2147483648',
    '-2147483649',
    '10000',
    '10001',
    '100000000',
    '100000001',
    `1${'0'.repeat(400)}`,
    `0.${'0'.repeat(400)}1`,
  ),
  fc.integer().map(String),
  fc.integer({ min: -5, max: 20_000 }).map(String),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => String(d)),
);

const protoKeys = ['__proto__', 'constructor', 'prototype'] as const;
const operatorKeys = [
  '$where',
  '$ne',
  '$gt',
  '$gte',
  '$lt',
  '$in',
  '$nin',
  '$regex',
  '$expr',
  '$function',
  '$or',
  '$set',
  '$inc',
  '$unset',
  '$rename',
  '$jsonSchema',
] as const;
const fieldKeys = [
  'customerId',
  'items',
  'currency',
  'metadata',
  'sku',
  'quantity',
  'unitPriceCents',
  'status',
  '_id',
  'id',
  'clientId',
  'totalCents',
  'attempts',
  'history',
  'createdAt',
  'toString',
  'hasOwnProperty',
  'valueOf',
] as const;

/** Object keys an attacker would try: prototype pollution, operators, paths, field names, junk. */
export const hostileKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...protoKeys) },
  { weight: 3, arbitrary: fc.constantFrom(...operatorKeys) },
  { weight: 2, arbitrary: fc.constantFrom(...fieldKeys) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('a.b', '.', '$', '', 'items.0', 'metadata.$where', 'a\u0000b', '\u202e', '\u{1F600}'),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom('$', '.', '', 'x.'), fc.string({ unit: hostileChar, maxLength: 12 }))
      .map(([p, s]) => p + s),
  },
  { weight: 2, arbitrary: fc.string({ unit: hostileChar, maxLength: 16 }) },
);

const leaf: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: hostileString.map((value): Json => ({ kind: 'string', value })) },
  { weight: 3, arbitrary: rawNumber.map((text): Json => ({ kind: 'raw', text })) },
  { weight: 1, arbitrary: fc.constantFrom('true', 'false', 'null').map((text): Json => ({ kind: 'raw', text })) },
);

/** `{ "$op": value }`: a query or update operator where a value belongs. */
const operatorObject: fc.Arbitrary<Json> = fc
  .tuple(fc.constantFrom(...operatorKeys), leaf)
  .map(([op, value]): Json => ({ kind: 'object', entries: [[op, value]] }));

/** Nesting far deeper than any order: arrays or objects (with a hostile key at each level). */
export const deepNode: fc.Arbitrary<Json> = fc
  .record({
    depth: fc.oneof(fc.constant(1000), fc.integer({ min: 2, max: 3000 })),
    shape: fc.constantFrom('array' as const, 'object' as const),
    key: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', '$where', 'a', 'items'), hostileKey),
    inner: fc.oneof(leaf, operatorObject),
  })
  .map((r): Json => ({ kind: 'deep', ...r }));

/** Any hostile JSON value: leaves, operator objects, small nested arrays and objects, deep nesting. */
export const hostileTree: fc.Arbitrary<Json> = fc.letrec<{ tree: Json; array: Json; object: Json }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 4, arbitrary: leaf },
    { weight: 2, arbitrary: operatorObject },
    { weight: 2, arbitrary: tie('array') },
    { weight: 2, arbitrary: tie('object') },
    { weight: 1, arbitrary: deepNode },
  ),
  array: fc.array(tie('tree'), { maxLength: 4 }).map((items): Json => ({ kind: 'array', items })),
  object: fc
    .array(fc.tuple(hostileKey, tie('tree')), { maxLength: 4 })
    .map((entries): Json => ({ kind: 'object', entries })),
})).tree;

// ---------------------------------------------------------------------------------------------
// Valid orders, and valid orders with one mutation
// ---------------------------------------------------------------------------------------------

/** A metadata key docs/design.md allows: 1–40 chars, no `$` first, no `.`; no control characters, well formed. */
const metadataKey = fc
  .string({
    unit: fc.oneof(
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
      fc.constantFrom('\u202e', '\u200f', '\u05d0', '\u{1F600}', 'e\u0301', '$', '-', '_', ' '),
    ),
    minLength: 1,
    maxLength: 12,
  })
  .filter((k) => k.length <= 40 && isValidMetadataKey(k) && k !== '__proto__');

const metadataValue = fc.string({
  unit: fc.oneof(
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
    fc.constantFrom('\u0000', '\u202e', '\u{1F600}', '$', '.', '"', '\\', '\n'),
  ),
  maxLength: 40,
});

export const validItem = fc.record({
  sku: fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/),
  quantity: fc.integer({ min: 1, max: 10_000 }),
  unitPriceCents: fc.oneof(fc.integer({ min: 0, max: 100_000_000 }), fc.constantFrom(0, 1, 100_000_000)),
});

/** A body docs/design.md accepts: every field within its rules, sometimes at the edges. */
export const validOrder = fc.record(
  {
    customerId: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
    items: fc.oneof(
      { weight: 8, arbitrary: fc.array(validItem, { minLength: 1, maxLength: 5 }) },
      { weight: 1, arbitrary: fc.array(validItem, { minLength: 95, maxLength: 100 }) },
    ),
    currency: fc.stringMatching(/^[A-Z]{3}$/),
    metadata: fc.dictionary(metadataKey, metadataValue, { maxKeys: 20 }),
  },
  { requiredKeys: ['customerId', 'items', 'currency'] },
);

type Op = 'replace' | 'add' | 'drop' | 'duplicate' | 'rename';

/** Every node of a tree, as the path of child indices that reaches it. */
function paths(j: Json, at: number[] = []): number[][] {
  const children = j.kind === 'array' ? j.items : j.kind === 'object' ? j.entries.map(([, v]) => v) : [];
  return [at, ...children.flatMap((child, i) => paths(child, [...at, i]))];
}

function edit(j: Json, path: readonly number[], f: (node: Json) => Json): Json {
  if (path.length === 0) return f(j);
  const [i, ...rest] = path;
  if (j.kind === 'array') return { ...j, items: j.items.map((c, k) => (k === i ? edit(c, rest, f) : c)) };
  if (j.kind === 'object') {
    return { ...j, entries: j.entries.map(([key, c], k) => (k === i ? ([key, edit(c, rest, f)] as const) : [key, c])) };
  }
  return j;
}

function mutate(node: Json, op: Op, key: string, value: Json, index: number): Json {
  if (node.kind === 'object' && node.entries.length > 0) {
    const i = index % node.entries.length;
    switch (op) {
      case 'add':
        return { ...node, entries: [...node.entries, [key, value]] };
      case 'drop':
        return { ...node, entries: node.entries.filter((_, k) => k !== i) };
      case 'duplicate':
        return { ...node, entries: [...node.entries, [node.entries[i][0], value]] };
      case 'rename':
        return { ...node, entries: node.entries.map(([k, v], n) => [n === i ? key : k, v] as const) };
      case 'replace':
        return value;
    }
  }
  if (node.kind === 'array' && node.items.length > 0) {
    const i = index % node.items.length;
    if (op === 'add' || op === 'duplicate') return { ...node, items: [...node.items, value] };
    if (op === 'drop') return { ...node, items: node.items.filter((_, k) => k !== i) };
  }
  if (node.kind === 'object' && op === 'add') return { ...node, entries: [[key, value]] };
  return value;
}

/** A valid order with exactly one thing changed somewhere in it (a value, a key, an entry). */
export const mutatedOrder: fc.Arbitrary<{ json: Json; mutation: string }> = fc
  .record({
    order: validOrder,
    at: fc.nat(),
    op: fc.constantFrom<Op>('replace', 'add', 'drop', 'duplicate', 'rename'),
    key: hostileKey,
    value: fc.oneof(hostileTree, hostileTree, deepNode),
    index: fc.nat(),
  })
  .map(({ order, at, op, key, value, index }) => {
    const tree = fromValue(order);
    const all = paths(tree);
    const path = all[at % all.length];
    return { json: edit(tree, path, (node) => mutate(node, op, key, value, index)), mutation: `${op} at [${path}]` };
  });

// ---------------------------------------------------------------------------------------------
// The oracle: docs/design.md's input rules, written out without joi
// ---------------------------------------------------------------------------------------------

const ORDER_KEYS = new Set(['customerId', 'items', 'currency', 'metadata']);
const ITEM_KEYS = ['sku', 'quantity', 'unitPriceCents'];
// A string JSON can carry but UTF-8 (and so BSON) cannot: a surrogate half without its partner.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isIntegerIn(v: unknown, min: number, max: number): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

function isValidMetadataKey(k: string): boolean {
  return (
    k.length >= 1 &&
    k.length <= 40 &&
    !k.startsWith('$') &&
    !k.includes('.') &&
    !/[\x00-\x1f]/.test(k) &&
    !LONE_SURROGATE.test(k)
  );
}

/**
 * Every key, at every depth (own enumerable keys, as JSON.parse and the BSON serializer see them).
 * Iterative: generated bodies nest thousands of levels deep.
 */
export function allKeys(value: unknown): string[] {
  const keys: string[] = [];
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const node = pending.pop();
    if (Array.isArray(node)) pending.push(...node);
    else if (node !== null && typeof node === 'object' && !(node instanceof Date)) {
      for (const [k, v] of Object.entries(node)) {
        keys.push(k);
        pending.push(v);
      }
    }
  }
  return keys;
}

/**
 * Why a parsed body breaks docs/design.md's rules ("Orders"); empty when it is a valid order. Beyond the
 * text of the design: metadata keys may not hold control characters, and no string may hold a lone
 * surrogate (MongoDB stores UTF-8, which cannot represent one).
 */
export function orderRuleViolations(body: unknown): string[] {
  const problems: string[] = [];
  if (!isPlainObject(body)) return ['body is not an object'];
  for (const key of allKeys(body)) {
    if (key.startsWith('$') || key.includes('.')) problems.push(`key ${JSON.stringify(key)}`);
    if (key === '__proto__') problems.push('__proto__ key');
  }
  for (const key of Object.keys(body)) if (!ORDER_KEYS.has(key)) problems.push(`unknown field ${key}`);
  const { customerId, items, currency, metadata } = body;
  if (typeof customerId !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(customerId)) problems.push('customerId');
  if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) problems.push('currency');
  if (!Array.isArray(items) || items.length < 1 || items.length > 100) problems.push('items');
  else {
    items.forEach((item: unknown, i) => {
      if (!isPlainObject(item)) return problems.push(`items.${i}`);
      const keys = Object.keys(item);
      if (keys.length !== ITEM_KEYS.length || !ITEM_KEYS.every((k) => keys.includes(k)))
        problems.push(`items.${i} keys`);
      if (typeof item.sku !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(item.sku)) problems.push(`items.${i}.sku`);
      if (!isIntegerIn(item.quantity, 1, 10_000)) problems.push(`items.${i}.quantity`);
      if (!isIntegerIn(item.unitPriceCents, 0, 100_000_000)) problems.push(`items.${i}.unitPriceCents`);
      return undefined;
    });
  }
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) problems.push('metadata');
    else {
      const entries = Object.entries(metadata);
      if (entries.length > 20) problems.push('metadata has more than 20 keys');
      for (const [k, v] of entries) {
        if (!isValidMetadataKey(k)) problems.push(`metadata key ${JSON.stringify(k)}`);
        if (typeof v !== 'string' || v.length > 256 || LONE_SURROGATE.test(v)) problems.push(`metadata.${k}`);
      }
    }
  }
  return problems;
}

/** JSON with sorted keys at every depth (negative zero prints as 0, as in any JSON). */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * The client-supplied part of an order (stored document, response or request body), comparable with
 * stableJson. Empty metadata counts as none: the api does not keep `metadata: {}`.
 */
export function clientPart(o: Record<string, unknown>): Record<string, unknown> {
  const items = Array.isArray(o.items) ? (o.items as Array<Record<string, unknown>>) : [];
  const metadata = o.metadata as Record<string, unknown> | null | undefined;
  return {
    customerId: o.customerId,
    items: items.map(({ sku, quantity, unitPriceCents }) => ({ sku, quantity, unitPriceCents })),
    currency: o.currency,
    ...(metadata && Object.keys(metadata).length > 0 ? { metadata } : {}),
  };
}
