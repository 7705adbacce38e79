import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../src/cli.ts';
import { startServer, type TestServer } from './load/servers.ts';

let server: TestServer | undefined;
let dir: string | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

function capture(signal?: AbortSignal) {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, signal }, out, err };
}

describe('keel CLI', () => {
  it('runs a load test and exits 0 when thresholds pass', async () => {
    server = await startServer((_req, res) => res.end('ok'));
    const c = capture();
    const code = await main(['load', server.url, '-c', '2', '-d', '300ms', '-t', 'rate<0.01', '--json'], c.io);
    expect(code).toBe(0);
    const r = JSON.parse(c.out.join(''));
    expect(r.completed).toBeGreaterThan(0);
    expect(r.thresholds[0]).toMatchObject({ source: 'rate<0.01', ok: true });
  });

  it('exits 1 when a threshold fails and writes the HTML report', async () => {
    server = await startServer((_req, res) => res.end('ok'));
    dir = await mkdtemp(join(tmpdir(), 'keel-cli-'));
    const html = join(dir, 'report.html');
    const c = capture();
    const code = await main(['load', server.url, '-r', '100', '-d', '1s', '-t', 'rps>100000', '--html', html], c.io);
    expect(code).toBe(1);
    expect(c.out.join('')).toMatch(/FAIL rps>100000/);
    const page = await readFile(html, 'utf8');
    expect(page).toMatch(/<svg/);
    expect(page).toMatch(/rps&#62;100000/);
    expect(page).not.toMatch(/<script|https?:\/\/(?!127)/);
  });

  it('replays a JSON scenario file', async () => {
    const paths: string[] = [];
    server = await startServer((req, res) => {
      paths.push(req.url!);
      res.end('ok');
    });
    dir = await mkdtemp(join(tmpdir(), 'keel-cli-'));
    const file = join(dir, 'mix.json');
    await writeFile(
      file,
      JSON.stringify({ target: server.url, requests: [{ path: '/topics/{{1..9}}', weight: 3 }, { path: '/search?q={{a|b}}' }] }),
    );
    const code = await main(['load', '-s', file, '-c', '1', '-d', '300ms', '-q'], capture().io);
    expect(code).toBe(0);
    expect(paths.some((p) => /^\/topics\/[1-9]$/.test(p))).toBe(true);
    expect(paths.some((p) => /^\/search\?q=[ab]$/.test(p))).toBe(true);
  });

  it('exits 2 with a clear message on a bad flag or value', async () => {
    const a = capture();
    expect(await main(['load', 'http://127.0.0.1:1/', '--bogus'], a.io)).toBe(2);
    expect(a.err.join('')).toMatch(/--bogus/);
    const b = capture();
    expect(await main(['load', 'http://127.0.0.1:1/', '-c', 'many'], b.io)).toBe(2);
    expect(b.err.join('')).toMatch(/--connections must be an integer/);
    const c = capture();
    expect(await main(['load', 'http://127.0.0.1:1/', '--stages', '30s'], c.io)).toBe(2);
    expect(c.err.join('')).toMatch(/invalid stage/);
    const d = capture();
    expect(await main(['load', 'http://127.0.0.1:1/', '-t', 'p95<1'], d.io)).toBe(2);
    expect(d.err.join('')).toMatch(/invalid threshold/);
    expect(await main(['frobnicate'], capture().io)).toBe(2);
  });

  it('prints help and exits 0', async () => {
    const c = capture();
    expect(await main(['help'], c.io)).toBe(0);
    expect(c.out.join('')).toMatch(/keel load/);
  });

  it('runs the chaos proxy until stopped', async () => {
    server = await startServer((_req, res) => res.end('ok'));
    const ac = new AbortController();
    const c = capture(ac.signal);
    const running = main(['chaos', '--target', `127.0.0.1:${server.port}`, '--control', '0'], c.io);
    while (c.out.length === 0) await new Promise((r) => setTimeout(r, 10));
    const { proxy, control } = JSON.parse(c.out[0]!);
    expect(control).toBeGreaterThan(0);
    const s = connect(proxy, '127.0.0.1');
    const reply = await new Promise<string>((resolve) => {
      s.once('data', (d) => resolve(d.toString()));
      s.write('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    });
    s.destroy();
    expect(reply).toMatch(/^HTTP\/1.1 200/);
    ac.abort();
    expect(await running).toBe(0);
  });

  it('exits 2 when chaos has no target', async () => {
    const c = capture();
    expect(await main(['chaos'], c.io)).toBe(2);
    expect(c.err.join('')).toMatch(/--target/);
  });
});
