import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../src/cli.ts';
import { CHAOS, type CommandSpec, LOAD, SOAK, shownDefault } from '../src/load/cli-flags.ts';
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

  it("prints each command's flags with their defaults on --help, -h and help <command>, exiting 0", async () => {
    const commands: [string, CommandSpec][] = [
      ['load', LOAD],
      ['soak', SOAK],
      ['chaos', CHAOS],
    ];
    for (const [name, spec] of commands) {
      for (const argv of [
        [name, '--help'],
        [name, '-h'],
        ['help', name],
      ]) {
        const c = capture();
        expect(await main(argv, c.io), argv.join(' ')).toBe(0);
        const text = c.out.join('');
        for (const [flag, f] of Object.entries(spec.flags)) {
          const line = text.split('\n').find((l) => new RegExp(`^ +(-\\w, )? *--${flag} `).test(l));
          expect(line, `${name} --${flag}`).toBeDefined();
          expect(line).toContain(shownDefault(f) === 'required' ? '[required]' : `[default: ${shownDefault(f)}]`);
        }
      }
    }
  });

  it('documents in docs/load.md every flag the help lists, with the same default', async () => {
    const docs = await readFile(join(import.meta.dirname, '..', 'docs', 'load.md'), 'utf8');
    const table = (heading: string): Map<string, string> => {
      const section = docs.slice(docs.indexOf(heading)).split('\n### ')[0]!;
      const rows = new Map<string, string>();
      for (const line of section.split('\n').filter((l) => l.startsWith('| `-'))) {
        const cells = line.split('|').map((c) => c.trim());
        for (const [flag] of cells[1]!.matchAll(/--[a-z-]+/g)) rows.set(flag.slice(2), cells[3]!.replaceAll('`', ''));
      }
      return rows;
    };
    const cases: [string, CommandSpec][] = [
      ['### `keel load <url> [options]`', LOAD],
      ['### `keel soak <url> [options]`', SOAK],
      ['### `keel chaos --target host:port [options]`', CHAOS],
    ];
    for (const [heading, spec] of cases) {
      const documented = table(heading);
      const expected = new Map(Object.entries(spec.flags).map(([flag, f]) => [flag, shownDefault(f)]));
      expect(documented, heading).toEqual(expected);
    }
  });

  it('exits 2 when --connections or --pipelining is above its bound', async () => {
    const a = capture();
    expect(await main(['load', 'http://127.0.0.1:1/', '-c', '10001'], a.io)).toBe(2);
    expect(a.err.join('')).toMatch(/--connections must be an integer from 1 to 10000/);
    const b = capture();
    expect(await main(['load', 'http://127.0.0.1:1/', '-p', '1001'], b.io)).toBe(2);
    expect(b.err.join('')).toMatch(/--pipelining must be an integer from 1 to 1000/);
  });

  it('exits 2 on a bad --fit or --expect-status', async () => {
    const a = capture();
    expect(await main(['soak', 'http://127.0.0.1:1/', '--fit', 'rss'], a.io)).toBe(2);
    expect(a.err.join('')).toMatch(/--fit must be heapUsed\+arrayBuffers or heapUsed/);
    const b = capture();
    expect(await main(['soak', 'http://127.0.0.1:1/', '--expect-status', 'ok'], b.io)).toBe(2);
    expect(b.err.join('')).toMatch(/--expect-status must be HTTP statuses/);
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

  it('starts chaos with only the faults given, the others at their defaults', async () => {
    server = await startServer((_req, res) => res.end('ok'));
    const ac = new AbortController();
    const c = capture(ac.signal);
    const running = main(['chaos', '--target', `127.0.0.1:${server.port}`, '--latency', '300', '--control', '0'], c.io);
    while (c.out.length === 0) await new Promise((r) => setTimeout(r, 10));
    const { control } = JSON.parse(c.out[0]!);
    const faults = await (await fetch(`http://127.0.0.1:${control}/faults`)).json();
    ac.abort();
    expect(await running).toBe(0);
    expect(faults).toEqual({ latencyMs: 300, jitterMs: 0, bandwidthBps: 0, reset: false, blackhole: false, refuse: false });
  });

  it('exits 2 with a message on a bad soak, chaos or scenario value', async () => {
    dir = await mkdtemp(join(tmpdir(), 'keel-cli-'));
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{bad json');
    const cases: [string[], RegExp][] = [
      [['soak', 'http://127.0.0.1:1/', '-n', '100'], /--cycles must be >= 2 × --sample-every \(200\)/],
      [['chaos', '--target', '127.0.0.1:1', '--port', '70000'], /--port must be a port/],
      [['chaos', '--target', '127.0.0.1:1', '--control', '99999'], /--control must be a port/],
      [['load', '-s', join(dir, 'missing.json')], /--scenario .*missing\.json: ENOENT/],
      [['load', '-s', bad], /--scenario .*bad\.json: .*JSON/],
    ];
    for (const [argv, message] of cases) {
      const c = capture();
      expect(await main(argv, c.io), argv.join(' ')).toBe(2);
      expect(c.err.join('')).toMatch(message);
    }
  });

  it('prints a soak type that grew in bytes but shrank in count with its own sign', async () => {
    // Two tiny heap snapshots: "Shrinking" goes from 2 objects of 10 B to 1 object of 100 B.
    const snapshot = (nodes: number[]) =>
      JSON.stringify({
        snapshot: { meta: { node_fields: ['type', 'name', 'self_size'], node_types: [['object']] } },
        nodes,
        strings: ['Shrinking'],
      });
    const snapshots = [snapshot([0, 0, 10, 0, 0, 10]), snapshot([0, 0, 100])];
    let heap = 0;
    server = await startServer((req, res) => {
      if (req.url === '/__keel/heap') {
        heap += 100_000;
        return void res.end(JSON.stringify({ heapUsed: heap, handles: 1, gc: true }));
      }
      if (req.url === '/__keel/heap-snapshot') return void res.end(snapshots.shift());
      res.end('ok');
    });
    dir = await mkdtemp(join(tmpdir(), 'keel-cli-'));
    const c = capture();
    const code = await main(['soak', server.url, '-n', '4', '-k', '2', '--warmup', '0', '--snapshot-dir', dir], c.io);
    expect(code).toBe(1);
    expect(c.out.join('')).toMatch(/ {2}Shrinking: -1 objects, \+80 bytes\n/);
  });
});
