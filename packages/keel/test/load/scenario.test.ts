import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadScenario, scenarioSource } from '../../src/load/scenario.ts';

const here = dirname(fileURLToPath(import.meta.url));

const text = (s: ReturnType<typeof scenarioSource>) => s.next().buf.toString();

describe('scenarioSource', () => {
  it('serializes a fixed request once, with host and content-length', () => {
    const s = scenarioSource({ requests: [{ method: 'post', path: '/replies', body: { text: 'hi' } }] }, 'h:1');
    const first = s.next();
    expect(first.buf.toString()).toBe(
      'POST /replies HTTP/1.1\r\nhost: h:1\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{"text":"hi"}',
    );
    expect(s.next().buf).toBe(first.buf);
  });

  it('draws ids from a range and words from a list', () => {
    const s = scenarioSource({ requests: [{ path: '/topics/{{1..3}}?q={{a|b}}' }] }, 'h:1');
    const seen = new Set(Array.from({ length: 200 }, () => /GET (\S+) /.exec(text(s))![1]));
    expect([...seen].sort()).toEqual([
      '/topics/1?q=a',
      '/topics/1?q=b',
      '/topics/2?q=a',
      '/topics/2?q=b',
      '/topics/3?q=a',
      '/topics/3?q=b',
    ]);
  });

  it('counts up with {{seq}} in bodies', () => {
    const s = scenarioSource({ requests: [{ method: 'POST', path: '/p', body: 'n={{seq}}' }] }, 'h:1');
    expect(text(s).endsWith('n=1')).toBe(true);
    expect(text(s).endsWith('n=2')).toBe(true);
  });

  it('mixes requests by weight', () => {
    const s = scenarioSource(
      {
        requests: [
          { path: '/a', weight: 9 },
          { path: '/b', weight: 1 },
        ],
      },
      'h:1',
    );
    let a = 0;
    for (let i = 0; i < 2000; i++) if (text(s).startsWith('GET /a ')) a++;
    expect(a / 2000).toBeGreaterThan(0.85);
    expect(a / 2000).toBeLessThan(0.95);
  });

  it('replays the same draws for the same seed', () => {
    const mk = () => scenarioSource({ requests: [{ path: '/t/{{1..1000000}}' }] }, 'h:1', 7);
    const a = mk();
    const b = mk();
    expect(Array.from({ length: 5 }, () => text(a))).toEqual(Array.from({ length: 5 }, () => text(b)));
  });

  it('rejects empty scenarios, bad paths, weights and templates', () => {
    expect(() => scenarioSource({ requests: [] }, 'h:1')).toThrow(/"requests"/);
    expect(() => scenarioSource({ requests: [{ path: 'x' }] }, 'h:1')).toThrow(/path/);
    expect(() => scenarioSource({ requests: [{ path: '/', weight: 0 }] }, 'h:1')).toThrow(/weight/);
    expect(() => scenarioSource({ requests: [{ path: '/{{nope}}' }] }, 'h:1')).toThrow(/unknown template/);
  });
});

describe('loadScenario', () => {
  it('loads JSON and module scenario files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keel-scn-'));
    try {
      await writeFile(join(dir, 'a.json'), JSON.stringify({ requests: [{ path: '/j' }] }));
      await writeFile(join(dir, 'b.mjs'), "export default { requests: [{ path: '/m' }] };");
      expect((await loadScenario(join(dir, 'a.json'))).requests[0]!.path).toBe('/j');
      expect((await loadScenario(join(dir, 'b.mjs'))).requests[0]!.path).toBe('/m');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('loads a .ts scenario in a bundled CLI, which has no TypeScript loader until then', async () => {
    // Bundled into plain JavaScript, as the benches run the CLI (benchmarks/lib/keel-cli.ts).
    // The bundle lives in the package so its npm imports resolve; the scenario is TypeScript.
    const dir = await mkdtemp(join(here, '.bundle-'));
    try {
      // esbuild's CLI in a child that ends: its JS API keeps a service process or worker alive.
      const entry = join(dir, 'entry.ts');
      const scenarioTs = JSON.stringify(join(here, '../../src/load/scenario.ts'));
      await writeFile(
        entry,
        `import { loadScenario } from ${scenarioTs};\nconst s = await loadScenario(process.argv[2]);\nprocess.stdout.write(s.requests[0].path);\n`,
      );
      const esbuild = createRequire(import.meta.url).resolve('esbuild/bin/esbuild');
      const args = [entry, '--bundle', '--platform=node', '--format=esm', '--packages=external', '--log-level=error'];
      const built = spawnSync(esbuild, [...args, `--outfile=${join(dir, 'load.mjs')}`], { encoding: 'utf8' });
      expect(built.stderr).toBe('');
      await writeFile(
        join(dir, 's.ts'),
        "const s: { requests: { path: string }[] } = { requests: [{ path: '/typed' }] };\nexport default s;\n",
      );
      const r = spawnSync(process.execPath, [join(dir, 'load.mjs'), join(dir, 's.ts')], {
        encoding: 'utf8',
        env: { ...process.env, NODE_OPTIONS: '' },
      });
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('/typed');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
