import test from 'ava';
import Joi from 'joi';
import { toOpenApiSchema, toQueryParameters } from '../../api/http/joi-openapi.js';

/** The rules joi-to-json leaves out, each translated so the schema refuses what joi refuses. */

test('when a joi string does not allow the empty string, then the schema has minLength 1', (t) => {
  t.is(toOpenApiSchema(Joi.string().max(5)).minLength, 1);
  t.is(toOpenApiSchema(Joi.string().allow('').max(5)).minLength, undefined);
  t.is(toOpenApiSchema(Joi.string().valid('A', 'B')).minLength, undefined, 'an enum says it already');
});

test('when a joi string has several patterns, one inverted, then every one is kept and the inverted one is a not', (t) => {
  const schema = toOpenApiSchema(
    Joi.string()
      .pattern(/^[a-z]+$/)
      .pattern(/^a/)
      .pattern(/x/, { invert: true }),
  );

  t.is(schema.pattern, '^[a-z]+$');
  t.deepEqual(schema.allOf, [{ pattern: '^a' }, { not: { pattern: 'x' } }]);
});

test('when a joi pattern has flags, then the translation refuses it (a JSON Schema pattern has none)', (t) => {
  t.throws(() => toOpenApiSchema(Joi.string().pattern(/^[a-z]+$/i)), { message: /cannot state/ });
});

test('when a pattern bounds the length, then maxLength and minLength state it (a literal prefix counted)', (t) => {
  const id = toOpenApiSchema(Joi.string().pattern(/^ord_[0-9a-f]{32}$/));
  const key = toOpenApiSchema(Joi.string().pattern(/^(?!\$)[^.]{1,40}$/));
  const open = toOpenApiSchema(Joi.string().pattern(/^[a-z]+$/));

  t.deepEqual([id.minLength, id.maxLength], [36, 36]);
  t.deepEqual([key.minLength, key.maxLength], [1, 40]);
  t.is(open.maxLength, undefined, 'an unbounded pattern states no limit');
});

test('when a joi integer has bounds, then its format is int32 inside 32 bits and int64 beyond', (t) => {
  t.is(toOpenApiSchema(Joi.number().integer().min(0).max(100)).format, 'int32');
  t.is(
    toOpenApiSchema(
      Joi.number()
        .integer()
        .min(0)
        .max(2 ** 40),
    ).format,
    'int64',
  );
  t.is(toOpenApiSchema(Joi.number().integer()).format, 'int64');
});

test('when a joi object is a bounded map of key schema to value schema, then it is propertyNames, additionalProperties and maxProperties', (t) => {
  const schema = toOpenApiSchema(
    Joi.object()
      .max(3)
      .pattern(Joi.string().pattern(/^[a-z]{1,4}$/), Joi.string().max(9)),
  );

  t.is(schema.maxProperties, 3);
  t.is(schema.properties, undefined);
  t.like(schema.propertyNames as object, { type: 'string', pattern: '^[a-z]{1,4}$', maxLength: 4 });
  t.like(schema.additionalProperties as object, { type: 'string', maxLength: 9 });
});

test('when a joi object mixes named keys and a key pattern, then the translation refuses it rather than guess', (t) => {
  t.throws(() => toOpenApiSchema(Joi.object({ a: Joi.string() }).pattern(Joi.string(), Joi.number())), {
    message: /only an object of one key schema/,
  });
});

test('when a query schema is turned into parameters, then each key is one query parameter with its schema', (t) => {
  const parameters = toQueryParameters(
    Joi.object({ limit: Joi.number().integer().min(1).max(100).default(20), q: Joi.string().required() }),
    { limit: 'page size' },
  );

  t.deepEqual(
    parameters.map((p) => [p.name, p.in, p.required, p.description]),
    [
      ['limit', 'query', false, 'page size'],
      ['q', 'query', true, undefined],
    ],
  );
  t.like(parameters[0].schema, { type: 'integer', minimum: 1, maximum: 100, default: 20, format: 'int32' });
});
