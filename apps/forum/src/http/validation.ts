import { Ajv, type Options } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance, FastifySchema } from 'fastify';

/**
 * Two validators: query strings and path params arrive as text, so they are coerced
 * (`?limit=5` → 5); JSON bodies are typed already and are NOT coerced, so `{"title":["a"]}`
 * or `{"content":1}` is a 400 rather than silently becoming a string. Unknown fields are
 * errors everywhere (no removeAdditional).
 */
export function installValidation(app: FastifyInstance): void {
  const base: Options = { removeAdditional: false, useDefaults: true, allErrors: false, strict: false };
  const coercing = new Ajv({ ...base, coerceTypes: 'array' });
  const strict = new Ajv({ ...base, coerceTypes: false });
  for (const ajv of [coercing, strict]) (addFormats as unknown as (a: Ajv) => void)(ajv);
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema as FastifySchema & object));
}
