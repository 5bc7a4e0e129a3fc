import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { describe, it } from 'vitest';

/*
 * Debian's Chromium driven by playwright-core (path and flags from DESIGN.md). Every browser test
 * file uses these: one launch, one rule for a missing browser, one place for screenshots.
 */
export const CHROMIUM = '/usr/lib/chromium/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const haveChromium = fs.existsSync(CHROMIUM);
const SHOTS = path.resolve('test-results/web');

/** Without Chromium: a failing test in CI (never a silent skip), a skipped one with the reason elsewhere. */
export function requireChromium(suite: string): void {
  if (haveChromium) return;
  describe(suite, () => {
    it.runIf(process.env.CI === 'true')(`needs Chromium at ${CHROMIUM}`, () => {
      throw new Error(`Chromium is missing at ${CHROMIUM}: apt-get install -y chromium`);
    });
    it.skipIf(process.env.CI === 'true')(`skipped: Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium)`, () => undefined);
  });
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
}

/**
 * A full-page screenshot under test-results/web/NAME.png. Headless Chromium on a loaded two-core
 * CI machine now and then has no compositor frame ready and answers "Unable to capture
 * screenshot"; a screenshot is an artefact, not an assertion, so that one error gets two more
 * tries (bounded) before it fails the test.
 */
export async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    try {
      await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
      return;
    } catch (err) {
      if (attempt >= 3 || !(err instanceof Error) || !err.message.includes('Unable to capture screenshot')) throw err;
      await page.waitForTimeout(200 * attempt);
    }
  }
}
