/**
 * Real headless Chromium for browser tests: Debian's `/usr/bin/chromium` driven by
 * playwright-core (which ships no browser of its own). Screenshots go under `test-output/`
 * at the repository root (gitignored).
 *
 * @example
 * ```ts
 * const browser = await launchBrowser();
 * try {
 *   const page = await browser.newPage();
 *   await page.goto(url);
 *   await page.screenshot({ path: outputPath('page.png') });
 * } finally {
 *   await browser.close();
 * }
 * ```
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';

/** The browser binary. Env `CHROMIUM_PATH` overrides. Default `/usr/bin/chromium`. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const OUTPUT_DIR = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'test-output');

/** Launches headless Chromium (`--no-sandbox`: tests run as root in containers). Close it when done. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // /dev/shm is small in containers; without this, large pages crash the renderer.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

/** An absolute path under `test-output/` (created if missing) for a screenshot or report. */
export function outputPath(name: string): string {
  const path = join(OUTPUT_DIR, name);
  mkdirSync(dirname(path), { recursive: true });
  return path;
}
