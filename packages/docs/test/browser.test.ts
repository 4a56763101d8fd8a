/**
 * The site in a real browser: a Chromium or Chrome found on the machine (`chromium.ts`: CHROME_PATH,
 * `chromium`/`google-chrome` on PATH, Debian's /usr/bin/chromium…), driven by playwright-core, opens
 * the built site served with the cross-origin isolation headers, visits every page (no console
 * error, no broken internal link or anchor), and drives the live memory map through vmalloc → mmap →
 * remap → worker write → munmap → vfree → exit, checking that frames change owner at each step.
 * Without a browser the file is skipped with one line saying how to run it; with `CI` set, that
 * fails instead.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serveStatic, type StaticServer } from '../src/serve.js';
import { browserPlan } from './chromium.js';
import { RESULTS_DIR, SITE_DIR } from './site.js';

const plan = browserPlan();
if (plan.kind === 'skip') console.warn(plan.message);
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let server: StaticServer | undefined;
let browser: Browser | undefined;

if (plan.kind === 'fail') {
  test('finds a Chromium or Chrome to drive', () => {
    throw new Error(plan.message);
  });
}

beforeAll(async () => {
  if (plan.kind !== 'run') return;
  if (!existsSync(join(SITE_DIR, 'index.html')))
    throw new Error(`the site is not built: no ${SITE_DIR}/index.html`);
  server = await serveStatic(SITE_DIR);
  browser = await chromium.launch({
    executablePath: plan.browser.path,
    headless: true,
    args: CHROMIUM_ARGS,
  });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** URL paths of every HTML page under `dir` (`index.html` as its folder). */
function htmlPages(dir: string, prefix = '/'): string[] {
  const pages: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory())
      pages.push(...htmlPages(join(dir, entry.name), `${prefix}${entry.name}/`));
    else if (entry.name === 'index.html') pages.push(prefix);
    else if (entry.name.endsWith('.html')) pages.push(prefix + entry.name);
  }
  return pages;
}

function started(): { server: StaticServer; browser: Browser } {
  if (server === undefined || browser === undefined)
    throw new Error('the browser or the server did not start');
  return { server, browser };
}

/** A page that records console errors, uncaught exceptions and failed requests into `problems`. */
async function watchedPage(problems: string[], where: () => string): Promise<Page> {
  const page = await started().browser.newPage({ viewport: { width: 1360, height: 1000 } });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`${where()}: console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`${where()}: uncaught ${error.message}`));
  page.on('requestfailed', (request) => {
    // Prefetches of linked pages are cancelled when the test navigates on: not a failure.
    if (request.failure()?.errorText === 'net::ERR_ABORTED') return;
    problems.push(
      `${where()}: request failed: ${request.url()} (${request.failure()?.errorText ?? '?'})`,
    );
  });
  page.on('response', (response) => {
    if (response.status() >= 400)
      problems.push(`${where()}: HTTP ${response.status()} for ${response.url()}`);
  });
  return page;
}

describe.runIf(plan.kind === 'run')('the built site in Chromium', () => {
  test('is served cross-origin isolated, so SharedArrayBuffer exists', async () => {
    const problems: string[] = [];
    const page = await watchedPage(problems, () => 'home');
    await page.goto(started().server.url);
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);
    expect(await page.evaluate(() => typeof SharedArrayBuffer)).toBe('function');
    await page.close();
    expect(problems).toEqual([]);
  });

  test('opens every page with no console error and no broken internal link or anchor', async () => {
    const base = new URL(started().server.url);
    const problems: string[] = [];
    let current = base.href;
    const page = await watchedPage(problems, () => current);
    const queue: string[] = [base.href];
    const linkedFrom = new Map<string, string>([[base.href, '(start)']]);
    const ids = new Map<string, Set<string>>();
    const anchors: { from: string; page: string; id: string }[] = [];
    while (queue.length > 0) {
      current = queue.shift() ?? '';
      const response = await page.goto(current, { waitUntil: 'load' });
      if (response?.status() !== 200) {
        problems.push(
          `broken link to ${current} (from ${linkedFrom.get(current) ?? '?'}): HTTP ${response?.status() ?? 'none'}`,
        );
        continue;
      }
      // VitePress sets `__vue_app__` on #app once the page is mounted (hydration done).
      await page.waitForFunction(
        () =>
          (document.getElementById('app') as { __vue_app__?: unknown } | null)?.__vue_app__ !==
          undefined,
      );
      ids.set(
        current,
        new Set(await page.$$eval('[id]', (elements) => elements.map((element) => element.id))),
      );
      const hrefs = await page.$$eval('a[href]', (links) =>
        links.map((link) => (link as HTMLAnchorElement).href),
      );
      for (const href of hrefs) {
        const url = new URL(href);
        if (url.origin !== base.origin) continue;
        const hash = decodeURIComponent(url.hash.slice(1));
        url.hash = '';
        if (hash !== '') anchors.push({ from: current, page: url.href, id: hash });
        if (!linkedFrom.has(url.href)) {
          linkedFrom.set(url.href, current);
          queue.push(url.href);
        }
      }
    }
    for (const anchor of anchors) {
      const known = ids.get(anchor.page);
      if (known !== undefined && !known.has(anchor.id))
        problems.push(`broken anchor #${anchor.id} on ${anchor.page} (from ${anchor.from})`);
    }
    await page.close();
    expect(problems).toEqual([]);
    const visited = [...ids.keys()].map((url) =>
      new URL(url).pathname.replace(/\/index\.html$/, '/'),
    );
    const built = htmlPages(SITE_DIR).filter((path) => path !== '/404.html');
    expect(
      built.filter((path) => !visited.includes(path)),
      'built pages no link reaches',
    ).toEqual([]);
    for (const path of [
      '/guide/getting-started.html',
      '/memory-map.html',
      '/glossary.html',
      '/api/',
      '/api/core/classes/Kernel.html',
    ]) {
      expect(visited, `the crawl reached ${path}`).toContain(path);
    }
  }, 300_000); // every page (about 60), one after the other, on a shared 2-core machine

  test('draws frames changing owner through vmalloc, mmap, remap, a worker write, munmap, vfree and exit', async () => {
    const problems: string[] = [];
    const page = await watchedPage(problems, () => 'memory map');
    await page.goto(new URL('memory-map.html', started().server.url).href);
    await page.waitForSelector('[data-testid="memory-map"][data-ready="true"]');

    const frames = (): Promise<{ pfn: number; kind: string; filled: boolean }[]> =>
      page.$$eval('[data-testid="frame"]', (elements) =>
        elements.map((element) => ({
          pfn: Number(element.getAttribute('data-pfn')),
          kind: element.getAttribute('data-kind') ?? '',
          filled: element.getAttribute('data-filled') === 'true',
        })),
      );
    const ofKind = async (kind: string): Promise<number[]> =>
      (await frames()).filter((frame) => frame.kind === kind).map((frame) => frame.pfn);
    const count = (testId: string): Promise<number> =>
      page.locator(`[data-testid="${testId}"]`).count();
    /** Wait until each selector matches exactly its count of elements (checked in the page). */
    const waitFor = async (counts: Record<string, number>): Promise<void> => {
      await page.waitForFunction(
        (expected) =>
          Object.entries(expected).every(
            ([selector, n]) => document.querySelectorAll(selector).length === n,
          ),
        counts,
        { timeout: 10_000 },
      );
    };
    const FRAME = '[data-testid="frame"]';
    const lastLog = (): Promise<string> =>
      page.locator('[data-testid="log"] li').first().innerText();

    const boot = await frames();
    expect(boot.length).toBe(256);
    expect(boot.some((frame) => frame.kind === 'meta')).toBe(true);
    expect(boot.filter((frame) => frame.kind === 'vmalloc' || frame.kind === 'page-table')).toEqual(
      [],
    );

    await page.selectOption('[data-testid="pages"]', '4');
    await page.click('[data-testid="btn-vmalloc"]');
    await waitFor({ [`${FRAME}[data-kind="vmalloc"]`]: 4 });
    const areaFrames = await ofKind('vmalloc');
    expect(
      boot
        .filter((frame) => areaFrames.includes(frame.pfn))
        .every((frame) => frame.kind === 'free'),
    ).toBe(true);
    expect(await count('area')).toBe(1);

    await page.click('[data-testid="btn-mmap"]');
    await waitFor({ '[data-testid="vma"]': 1 });
    expect(await lastLog()).toMatch(/mmap\(0, 16384, .*\) → 0x[0-9a-f]+$/);
    const tablesAfterMmap = (await ofKind('page-table')).length;

    await page.click('[data-testid="btn-remap"]');
    await waitFor({ '[data-testid="pte"]': 4 });
    expect(await lastLog()).toMatch(/remapPartial\(.*\) → 0$/);
    const ptePfns = await page.$$eval('[data-testid="pte"]', (paths) =>
      paths.map((path) => Number(path.getAttribute('data-pfn'))),
    );
    expect([...ptePfns].sort((a, b) => a - b)).toEqual([...areaFrames].sort((a, b) => a - b));
    expect((await ofKind('page-table')).length).toBeGreaterThan(tablesAfterMmap);

    await page.click('[data-testid="btn-write"]');
    await waitFor({
      [`${FRAME}[data-filled="true"]`]: 4,
      '[data-testid="memory-map"][data-busy="false"]': 1,
    });
    expect((await frames()).filter((frame) => frame.filled).map((frame) => frame.pfn)).toEqual(
      areaFrames,
    );
    expect(await lastLog()).toMatch(/worker wrote 16384 bytes$/);
    await mkdir(RESULTS_DIR, { recursive: true });
    await page
      .locator('[data-testid="memory-map"]')
      .screenshot({ path: join(RESULTS_DIR, 'memory-map.png') });

    await page.click('[data-testid="btn-munmap"]');
    await waitFor({ '[data-testid="pte"]': 0, '[data-testid="vma"]': 0 });
    expect(await ofKind('vmalloc')).toEqual(areaFrames);

    await page.click('[data-testid="btn-vfree"]');
    await waitFor({ [`${FRAME}[data-kind="vmalloc"]`]: 0 });
    const afterVfree = await frames();
    expect(
      afterVfree
        .filter((frame) => areaFrames.includes(frame.pfn))
        .every((frame) => frame.kind === 'free'),
    ).toBe(true);

    await page.click('[data-testid="btn-exit"]');
    await waitFor({ '[data-testid="process"]': 0 });
    expect((await frames()).map((frame) => frame.kind)).toEqual(boot.map((frame) => frame.kind));
    await page.close();
    expect(problems).toEqual([]);
  });

  test('explains what is missing when the page is not cross-origin isolated', async () => {
    const problems: string[] = [];
    const page = await watchedPage(problems, () => 'memory map, not isolated');
    // Same files, served without the headers: route every request through the test.
    await page.route('**/*', async (route) => {
      try {
        const response = await route.fetch();
        const headers = { ...response.headers() };
        delete headers['cross-origin-opener-policy'];
        delete headers['cross-origin-embedder-policy'];
        await route.fulfill({ response, headers });
      } catch (error) {
        // the page closed while this request was in flight: nothing is waiting for it any more
        if (!page.isClosed()) throw error;
      }
    });
    await page.goto(new URL('memory-map.html', started().server.url).href);
    await page.waitForSelector('[data-testid="map-problem"]');
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(false);
    expect(await page.locator('[data-testid="map-problem"]').innerText()).toContain(
      'Cross-Origin-Embedder-Policy',
    );
    expect(await page.locator('[data-testid="frame"]').count()).toBe(0);
    // requests still in flight (prefetches) must not be fulfilled into a closed page
    await page.unrouteAll({ behavior: 'ignoreErrors' });
    await page.close();
    expect(problems).toEqual([]);
  });
});
