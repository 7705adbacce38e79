import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { Agent, errors, interceptors, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type PostgresServer, startPostgres } from '../../../../test-support/postgres.ts';
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

describe('classify: errors from a real PostgreSQL server', () => {
  let server: PostgresServer;
  const clients: pg.Client[] = [];
  let table = 0;

  beforeAll(async () => {
    server = await startPostgres();
  });
  // Each test's connections end with it (the leak check runs after every test).
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
  });
  afterAll(() => server?.close());

  async function connect(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: server.url });
    c.on('error', () => {}); // a terminated backend also reports on the client
    await c.connect();
    clients.push(c);
    return c;
  }
  /** A fresh table `t<n>` with rows (1, 0) and (2, 0). */
  async function rows(c: pg.Client): Promise<string> {
    const name = `t${++table}`;
    await c.query(`CREATE TABLE ${name} (id int PRIMARY KEY, n int NOT NULL)`);
    await c.query(`INSERT INTO ${name} VALUES (1, 0), (2, 0)`);
    return name;
  }
  const failure = (p: Promise<unknown>): Promise<unknown> =>
    p.then(
      () => {
        throw new Error('expected the query to fail');
      },
      (e: unknown) => e,
    );

  it('treats a unique violation as permanent and low severity, so it does not count against a breaker', async () => {
    const c = await connect();
    const t = await rows(c);
    const err = await failure(c.query(`INSERT INTO ${t} VALUES (1, 1)`));
    expect(err).toMatchObject({ code: '23505' });
    expect(classify(err)).toEqual({ transient: false, severity: 'low', reason: 'postgres:23505' });
  });

  it('treats a syntax error as permanent and high severity', async () => {
    const c = await connect();
    const err = await failure(c.query('SELEC 1'));
    expect(err).toMatchObject({ code: '42601' });
    expect(classify(err)).toEqual({ transient: false, severity: 'high', reason: 'postgres:42601' });
  });

  it('treats a serialization failure as transient', async () => {
    const [a, b] = [await connect(), await connect()];
    const t = await rows(a);
    await a.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await a.query(`SELECT n FROM ${t} WHERE id = 1`); // takes the snapshot
    await b.query(`UPDATE ${t} SET n = n + 1 WHERE id = 1`);
    const err = await failure(a.query(`UPDATE ${t} SET n = n + 1 WHERE id = 1`));
    await a.query('ROLLBACK');
    expect(err).toMatchObject({ code: '40001' });
    expect(classify(err)).toEqual({ transient: true, severity: 'medium', reason: 'postgres:40001' });
  });

  it('treats a deadlock as transient', async () => {
    const [a, b] = [await connect(), await connect()];
    const t = await rows(a);
    for (const c of [a, b]) await c.query("BEGIN; SET LOCAL deadlock_timeout = '10ms'");
    await a.query(`UPDATE ${t} SET n = 1 WHERE id = 1`);
    await b.query(`UPDATE ${t} SET n = 1 WHERE id = 2`);
    const results = await Promise.allSettled([
      a.query(`UPDATE ${t} SET n = 2 WHERE id = 2`),
      b.query(`UPDATE ${t} SET n = 2 WHERE id = 1`),
    ]);
    for (const c of [a, b]) await c.query('ROLLBACK');
    const rejected = results.filter((r) => r.status === 'rejected');
    expect(rejected).toHaveLength(1);
    const err = (rejected[0] as PromiseRejectedResult).reason;
    expect(err).toMatchObject({ code: '40P01' });
    expect(classify(err)).toEqual({ transient: true, severity: 'medium', reason: 'postgres:40P01' });
  });

  it('treats a statement timeout as transient', async () => {
    const c = await connect();
    await c.query('SET statement_timeout = 20');
    const err = await failure(c.query('SELECT pg_sleep(10)'));
    expect(err).toMatchObject({ code: '57014' });
    expect(classify(err)).toEqual({ transient: true, severity: 'medium', reason: 'postgres:57014' });
  });

  it('treats a backend terminated by the server as transient', async () => {
    const [victim, admin] = [await connect(), await connect()];
    const pid = (await victim.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const pending = failure(victim.query('SELECT pg_sleep(30)'));
    // Terminate once the sleep is running, so the error answers that query.
    for (let i = 0; i < 200; i++) {
      const active = await admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [pid]);
      if (active.rowCount === 1) break;
    }
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    const err = await pending;
    expect(err).toMatchObject({ code: '57P01' });
    expect(classify(err)).toEqual({ transient: true, severity: 'medium', reason: 'postgres:57P01' });
  });

  it.each([
    ['08006', true, 'medium'], // connection_failure
    ['57P03', true, 'medium'], // cannot_connect_now
    ['53300', true, 'medium'], // too_many_connections
    ['55P03', true, 'medium'], // lock_not_available
    ['22P02', false, 'low'], // invalid_text_representation
    ['23503', false, 'low'], // foreign_key_violation
    ['53100', false, 'critical'], // disk_full
    ['XX000', false, 'critical'], // internal_error
    ['28P01', false, 'high'], // invalid_password
    ['3D000', false, 'high'], // invalid_catalog_name
  ] as const)('classifies SQLSTATE %s as transient=%s, severity %s', (code, transient, severity) => {
    const err = Object.assign(new Error(code), { code, severity: 'ERROR' });
    expect(classify(err)).toEqual({ transient, severity, reason: `postgres:${code}` });
  });

  it.each([
    ['Connection terminated unexpectedly', 'postgres:connection-lost'],
    ['Connection terminated due to connection timeout', 'postgres:connect-timeout'],
    ['timeout expired', 'postgres:connect-timeout'],
    ['timeout exceeded when trying to connect', 'postgres:pool-timeout'],
    ['Query read timeout', 'timeout'],
  ])("treats pg's code-less '%s' as transient", (message, reason) => {
    expect(classify(new Error(message))).toEqual({ transient: true, severity: 'medium', reason });
    // Only the exact message without a code: a coded error keeps its code's meaning.
    expect(classify(Object.assign(new Error(message), { code: 'EBUSY' })).transient).toBe(false);
    expect(classify(new Error(`${message}!`)).transient).toBe(false);
  });

  it('leaves five-letter errno codes without a severity to the network rules', () => {
    expect(classify(withCode('EPIPE')).reason).toBe('network:EPIPE');
    expect(classify(withCode('EBUSY'))).toEqual({ transient: false, severity: 'high', reason: 'code:EBUSY' });
  });
});
