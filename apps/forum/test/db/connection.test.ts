import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connection.ts';

const dir = mkdtempSync(join(tmpdir(), 'forum-conn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('openDatabase', () => {
  it('names DATABASE_PATH and the path when the path is a directory', () => {
    expect(() => openDatabase(dir)).toThrow(`cannot open the SQLite database at DATABASE_PATH=${dir}`);
  });

  it('names DATABASE_PATH and the path when the file is not SQLite', () => {
    const path = join(dir, 'notes.txt');
    writeFileSync(path, 'these are not the pages you are looking for\n'.repeat(40));
    expect(() => openDatabase(path)).toThrow(new RegExp(`DATABASE_PATH=${path.replaceAll('.', '\\.')}: .*SQLITE_NOTADB`));
  });

  it('opens :memory: and a fresh file', () => {
    openDatabase(':memory:').close();
    openDatabase(join(dir, 'sub', 'ok.db')).close();
  });
});
