/**
 * Scenarios: a weighted mix of requests, each pre-serialized once when it has no template,
 * or rendered per request when it does. Templates: `{{1..1000}}` draws an integer from the
 * range, `{{a|b|c}}` picks from the list, `{{seq}}` counts up. Draws use a seeded PRNG so a
 * run can be replayed.
 */
import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { seededRandom } from '../testing/random.ts';

/** One request of a scenario. */
export interface ScenarioRequest {
  name?: string;
  /** Default `GET`. */
  method?: string;
  /** Path and query, e.g. `/topics/{{1..500}}`. */
  path: string;
  headers?: Record<string, string>;
  /** A string (templated) or an object (sent as JSON, its string values templated). */
  body?: string | object;
  /** Relative weight, default 1. */
  weight?: number;
}

/** A scenario file's content. */
export interface Scenario {
  /** Base URL, e.g. `http://127.0.0.1:3000`; the CLI's URL argument overrides it. */
  target?: string;
  /** Headers added to every request. */
  headers?: Record<string, string>;
  requests: ScenarioRequest[];
}

/** A request ready for the wire. */
export interface PreparedRequest {
  buf: Buffer;
  head: boolean;
}

/** Yields the next request to send. */
export interface RequestSource {
  next(): PreparedRequest;
}

type Part = string | ((ctx: { rnd: () => number; seq: number }) => string);

function compile(text: string): Part[] {
  const parts: Part[] = [];
  let last = 0;
  for (const m of text.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)) {
    parts.push(text.slice(last, m.index));
    const expr = m[1]!;
    const range = /^(-?\d+)\.\.(-?\d+)$/.exec(expr);
    if (expr === 'seq') parts.push((c) => String(c.seq));
    else if (range) {
      const lo = Number(range[1]);
      const span = Number(range[2]) - lo + 1;
      if (span < 1) throw new TypeError(`keel: empty template range "{{${expr}}}"`);
      parts.push((c) => String(lo + Math.floor(c.rnd() * span)));
    } else if (expr.includes('|')) {
      const list = expr.split('|');
      parts.push((c) => list[Math.floor(c.rnd() * list.length)]!);
    } else throw new TypeError(`keel: unknown template "{{${expr}}}" (use {{1..100}}, {{a|b}} or {{seq}})`);
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  return parts.filter((p) => p !== '');
}

function render(parts: Part[], ctx: { rnd: () => number; seq: number }): string {
  let out = '';
  for (const p of parts) out += typeof p === 'string' ? p : p(ctx);
  return out;
}

function serialize(method: string, path: string, host: string, headers: Record<string, string>, body: string | undefined): Buffer {
  let head = `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  if (body !== undefined) head += `content-length: ${Buffer.byteLength(body)}\r\n`;
  return Buffer.from(`${head}\r\n${body ?? ''}`);
}

/**
 * Builds a request source from a scenario for the target `host` (`host:port`).
 *
 * @example
 * ```ts
 * const source = scenarioSource({ requests: [{ path: '/topics/{{1..100}}', weight: 3 }, { path: '/search?q={{node|keel}}' }] }, '127.0.0.1:3000');
 * source.next().buf.toString(); // 'GET /topics/42 HTTP/1.1\r\nhost: 127.0.0.1:3000\r\n\r\n'
 * ```
 */
export function scenarioSource(scenario: Scenario, host: string, seed = 1): RequestSource {
  if (!scenario || !Array.isArray(scenario.requests) || scenario.requests.length === 0) {
    throw new TypeError('keel: scenario option "requests" must be a non-empty array');
  }
  const rnd = seededRandom(seed);
  const ctx = { rnd, seq: 0 };
  const entries = scenario.requests.map((r, i) => {
    if (typeof r.path !== 'string' || !r.path.startsWith('/'))
      throw new TypeError(`keel: scenario requests[${i}].path must start with "/"`);
    const weight = r.weight ?? 1;
    if (!(weight > 0)) throw new TypeError(`keel: scenario requests[${i}].weight must be > 0`);
    const method = (r.method ?? 'GET').toUpperCase();
    const headers: Record<string, string> = { ...scenario.headers, ...r.headers };
    let bodyText: string | undefined;
    if (typeof r.body === 'string') bodyText = r.body;
    else if (r.body !== undefined) {
      bodyText = JSON.stringify(r.body);
      if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    }
    const pathParts = compile(r.path);
    const bodyParts = bodyText === undefined ? undefined : compile(bodyText);
    const fixed = pathParts.every((p) => typeof p === 'string') && (bodyParts ?? []).every((p) => typeof p === 'string');
    const head = method === 'HEAD';
    const prepared = fixed ? { buf: serialize(method, r.path, host, headers, bodyText), head } : undefined;
    const make = (): PreparedRequest =>
      prepared ?? {
        buf: serialize(method, render(pathParts, ctx), host, headers, bodyParts && render(bodyParts, ctx)),
        head,
      };
    return { weight, make };
  });
  const total = entries.reduce((n, e) => n + e.weight, 0);
  if (entries.length === 1) {
    const only = entries[0]!.make;
    return {
      next: () => {
        ctx.seq++;
        return only();
      },
    };
  }
  return {
    next(): PreparedRequest {
      ctx.seq++;
      let x = rnd() * total;
      for (const e of entries) {
        x -= e.weight;
        if (x < 0) return e.make();
      }
      return entries[entries.length - 1]!.make();
    },
  };
}

/**
 * Loads a scenario from a `.json`, `.js`, `.mjs` or `.ts` file (its default export).
 *
 * @example
 * ```ts
 * const scenario = await loadScenario('./forum-mix.ts');
 * ```
 */
export async function loadScenario(file: string): Promise<Scenario> {
  const path = resolve(file);
  if (extname(path) === '.json') return JSON.parse(await readFile(path, 'utf8')) as Scenario;
  let mod: { default?: Scenario };
  try {
    mod = (await import(pathToFileURL(path).href)) as { default?: Scenario };
  } catch (err) {
    // A bundled CLI (plain JavaScript, no loader) meets a .ts scenario: tsx's loader is
    // registered only now, so runs without one keep their process free of its thread.
    if ((err as { code?: unknown })?.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
    // The failed import is cached by its URL, so the retry's URL differs by a query.
    const { register } = await import('tsx/esm/api');
    register();
    mod = (await import(`${pathToFileURL(path).href}?tsx`)) as { default?: Scenario };
  }
  if (!mod.default) throw new TypeError(`keel: scenario file ${file} has no default export`);
  return mod.default;
}
