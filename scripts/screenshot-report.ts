/**
 * Screenshot of a heed report in headless Chromium (Debian `chromium`, driven by playwright-core):
 *   node --import tsx scripts/screenshot-report.ts [runs/demo/report.html] [docs/demo-report.png] [width]
 * Used for the README's picture of the demo report.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const [file = 'runs/demo/report.html', out = 'docs/demo-report.png', width = '1200'] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: process.env.HEED_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
const page = await browser.newPage({ viewport: { width: Number(width), height: 900 } });
await page.goto(pathToFileURL(resolve(file)).href);
await page.screenshot({ path: out, fullPage: true });
await browser.close();
console.error(`${out}: screenshot of ${file}`);
