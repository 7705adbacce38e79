import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, errors, interceptors, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { classify, createClassifier, statusOf } from '../../src/resilience/classify.ts';
import { BrokenCircuitError, RateLimitedError, TimeoutError } from '../../src/resilience/errors.ts';

const withCode = (code: string) => Object.assign(new Error(code), { code });

describe('classify', () => {
  it.each([
    'ECONNRESET',
    'ECONNREFUSED',
    'ETIMEDOUT',
    'EPIPE',
    'EAI_AGAIN',
    'UND_ERR_SOCKET',
    'UND_ERR_CONNECT_TIMEOUT',
    'UND_ERR_HEADERS_TIMEOUT',
  ])('treats %s as transient', (code) => {
    expect(classify(withCode(code))).toMatchObject({ transient: true });
  });

  it('reads the code of a fetch failure from its cause', () => {
    const err = new TypeError('fetch failed', { cause: withCode('ECONNRESET') });
    expect(classify(err)).toEqual({ transient: true, severity: 'medium', reason: 'network:ECONNRESET' });
  });

  it.each([408, 425, 429, 500, 502, 503, 504])('treats HTTP %i as transient', (status) => {
    expect(classify({ status }).transient).toBe(true);
  });

  it.each([400, 401, 403, 404, 409, 422])('treats HTTP %i as permanent and low severity', (status) => {
    expect(classify({ statusCode: status })).toMatchObject({ transient: false, severity: 'low' });
  });

  it('reads a status from error.response.status', () => {
    expect(statusOf({ response: { status: 503 } })).toBe(503);
  });

  it('classifies an undici ResponseError by its status, not its UND_ERR code', async () => {
    const server = createServer((_req, res) => res.writeHead(404).end('no such thing'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const dispatcher = new Agent().compose(interceptors.responseError());
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/missing`;
      const err = await request(url, { dispatcher }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'UND_ERR_RESPONSE', statusCode: 404 });
      expect(classify(err)).toEqual({ transient: false, severity: 'low', reason: 'http:404' });
    } finally {
      await dispatcher.close();
      await new Promise((r) => server.close(r));
    }
  });

  it('classifies an undici RequestRetryError by its status, not its UND_ERR code', () => {
    const err = new errors.RequestRetryError('Request failed', 404, {});
    expect(classify(err)).toEqual({ transient: false, severity: 'low', reason: 'http:404' });
  });

  it('treats an AbortError as permanent and a DOM TimeoutError as transient', () => {
    expect(classify(new DOMException('x', 'AbortError'))).toMatchObject({ transient: false, reason: 'abort' });
    expect(classify(new DOMException('x', 'TimeoutError'))).toMatchObject({ transient: true, reason: 'timeout' });
  });

  it('treats keel timeouts and rate limits as transient and a broken circuit as permanent', () => {
    expect(classify(new TimeoutError('t', 10)).transient).toBe(true);
    expect(classify(new RateLimitedError('r', 10)).transient).toBe(true);
    expect(classify(new BrokenCircuitError('b', 'open', 10)).transient).toBe(false);
  });

  it('treats unknown errors as permanent high severity', () => {
    expect(classify(new Error('??'))).toEqual({ transient: false, severity: 'high', reason: 'unknown' });
    expect(classify('a string')).toMatchObject({ transient: false });
  });

  it('lets user rules decide first and falls back to the defaults', () => {
    const c = createClassifier([
      (e) => (e instanceof Error && e.message === 'LOADING' ? { transient: true, severity: 'medium', reason: 'redis:loading' } : undefined),
    ]);
    expect(c(new Error('LOADING')).reason).toBe('redis:loading');
    expect(c(withCode('EPIPE')).reason).toBe('network:EPIPE');
  });

  it('rejects rules that are not functions', () => {
    expect(() => createClassifier([1 as never])).toThrow(/"rules"/);
  });
});
