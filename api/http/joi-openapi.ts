import { createRequire } from 'node:module';
import type Joi from 'joi';

/** A JSON Schema (OpenAPI 3.1 dialect) as joi-to-json builds it. */
export type JsonSchema = { [keyword: string]: unknown };

/** The part of joi's `describe()` output this file reads. */
interface JoiDescription {
  readonly type?: string;
  readonly rules?: readonly { readonly name: string; readonly args?: Record<string, unknown> }[];
  readonly allow?: readonly unknown[];
  readonly patterns?: readonly { readonly schema?: JoiDescription; readonly rule?: JoiDescription }[];
}

interface Parser {
  parse(description: unknown, definitions?: Record<string, unknown>, level?: number): JsonSchema;
  _setStringFieldProperties(schema: JsonSchema, description: JoiDescription): void;
  _setNumberFieldProperties(schema: JsonSchema, description: JoiDescription): void;
  _setObjectProperties(schema: JsonSchema, description: JoiDescription, definitions: unknown, level: number): void;
}

// joi-to-json ships its parsers as CommonJS classes without types; this file extends its OpenAPI 3.1 one.
const OpenApi31Parser = createRequire(import.meta.url)('joi-to-json/lib/parsers/open-api-3.1.js') as new (
  options?: object,
) => Parser;

const INT32_MAX = 2 ** 31 - 1;
/** `/source/` as joi describes a regex → `source`. JSON Schema patterns carry no flags: a flag is refused. */
function regexSource(described: unknown): string {
  const [, source, flags] = /^\/([\s\S]*)\/([a-z]*)$/.exec(String(described)) ?? [];
  if (source === undefined || flags !== '') throw new Error(`joi-openapi: cannot state ${String(described)}`);
  return source;
}
/**
 * The length a pattern allows when it is an anchored literal prefix, optional lookaheads and one character
 * class with a counted repeat (`^ord_[0-9a-f]{32}$`, `^(?!\$)[^.]{1,40}$`): the limit stated for tools
 * that look for `maxLength` rather than read patterns.
 */
const BOUNDED = /^\^([A-Za-z0-9_]*)(?:\(\?[!=](?:\\.|[^)\\])*\))*\[(?:\\.|[^\]\\])+\]\{(\d+)(?:,(\d+))?\}\$$/;

/**
 * joi-to-json's OpenAPI 3.1 parser, taught the joi rules this api uses that it leaves out, so the
 * generated schema accepts exactly what joi accepts (test/integration/api-openapi.test.ts checks that
 * with generated bodies):
 * - `Joi.string()` refuses `''` unless `allow('')`: `minLength: 1`;
 * - every `pattern()` counts (joi-to-json keeps the last), and an inverted one becomes `not`;
 * - `object().min()/max()` → `minProperties`/`maxProperties`;
 * - `object().pattern(keySchema, valueSchema)` → `propertyNames` + `additionalProperties`;
 * - integers get `format: int32`/`int64` from their bounds, bounded patterns their `maxLength`.
 */
class JoiOpenApiParser extends OpenApi31Parser {
  override _setStringFieldProperties(schema: JsonSchema, description: JoiDescription): void {
    super._setStringFieldProperties(schema, description);
    if (schema.type !== 'string') return;
    delete schema.pattern;
    const patterns = (description.rules ?? []).filter((r) => r.name === 'pattern').map((r) => r.args ?? {});
    const positive = patterns.filter((p) => !(p.options as { invert?: boolean } | undefined)?.invert);
    const inverted = patterns.filter((p) => (p.options as { invert?: boolean } | undefined)?.invert);
    const [first, ...rest] = positive.map((p) => regexSource(p.regex));
    if (first !== undefined) schema.pattern = first;
    const all: JsonSchema[] = [
      ...rest.map((pattern) => ({ pattern })),
      ...inverted.map((p) => ({ not: { pattern: regexSource(p.regex) } })),
    ];
    if (all.length > 0) schema.allOf = [...((schema.allOf as JsonSchema[] | undefined) ?? []), ...all];
    const bounded = first === undefined ? null : BOUNDED.exec(first);
    if (bounded) {
      const prefix = bounded[1].length;
      const min = prefix + Number(bounded[2]);
      const max = prefix + Number(bounded[3] ?? bounded[2]);
      schema.minLength = Math.max(Number(schema.minLength ?? 0), min);
      schema.maxLength = Math.min(Number(schema.maxLength ?? Infinity), max);
    }
    const empty = (description.allow ?? []).includes('');
    if (!empty && schema.enum === undefined && Number(schema.minLength ?? 0) < 1) schema.minLength = 1;
  }

  override _setNumberFieldProperties(schema: JsonSchema, description: JoiDescription): void {
    super._setNumberFieldProperties(schema, description);
    if (schema.type !== 'integer') return;
    const fits = (v: unknown): boolean => typeof v === 'number' && Math.abs(v) <= INT32_MAX;
    schema.format = fits(schema.minimum) && fits(schema.maximum) ? 'int32' : 'int64';
  }

  override _setObjectProperties(
    schema: JsonSchema,
    description: JoiDescription,
    definitions: unknown,
    level: number,
  ): void {
    const { patterns, ...rest } = description;
    super._setObjectProperties(schema, rest, definitions, level);
    if (schema.type !== 'object') return;
    for (const rule of description.rules ?? []) {
      if (rule.name === 'max') schema.maxProperties = rule.args?.limit;
      if (rule.name === 'min') schema.minProperties = rule.args?.limit;
      if (rule.name === 'length') schema.minProperties = schema.maxProperties = rule.args?.limit;
    }
    if (!patterns || patterns.length === 0) return;
    // A map (`object().pattern(key, value)` with no named keys) is all this api uses; anything else would
    // need `patternProperties` and is refused here rather than translated wrongly.
    const [only] = patterns;
    if (patterns.length > 1 || !only.schema || !only.rule || Object.keys(schema.properties as object).length > 0) {
      throw new Error('joi-openapi: only an object of one key schema and one value schema is translated');
    }
    delete schema.properties;
    schema.propertyNames = this.parse(only.schema, definitions as Record<string, unknown>, level + 1);
    schema.additionalProperties = this.parse(only.rule, definitions as Record<string, unknown>, level + 1);
  }
}

/** The OpenAPI 3.1 schema that accepts what `schema` accepts (see {@link JoiOpenApiParser}). */
export function toOpenApiSchema(schema: Joi.Schema): JsonSchema {
  return new JoiOpenApiParser().parse(schema.describe());
}

/** The query parameters an object schema describes, one per key, for an operation's `parameters`. */
export function toQueryParameters(schema: Joi.ObjectSchema, descriptions: Readonly<Record<string, string>> = {}) {
  const object = toOpenApiSchema(schema);
  const required = new Set((object.required as string[] | undefined) ?? []);
  return Object.entries(object.properties as Record<string, JsonSchema>).map(([name, property]) => ({
    name,
    in: 'query',
    required: required.has(name),
    ...(descriptions[name] ? { description: descriptions[name] } : {}),
    schema: property,
  }));
}
