/**
 * The static server of the built site: isolation headers on every response, pages found with or
 * without `.html`, 404 for anything else, and no path outside the root.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ISOLATION_HEADERS, serveStatic, type StaticServer } from '../src/serve.js';

let root = '';
let server: StaticServer;

beforeAll(async () => {
  const parent = await mkdtemp(join(tmpdir(), 'sabvm-serve-'));
  root = join(parent, 'site');
  await mkdir(join(root, 'guide'), { recursive: true });
  await writeFile(join(root, 'index.html'), '<h1>home</h1>');
  await writeFile(join(root, '404.html'), '<h1>not found</h1>');
  await writeFile(join(root, 'guide', 'start.html'), '<h1>start</h1>');
  await writeFile(join(parent, 'secret.txt'), 'outside the root');
  server = await serveStatic(root);
});

afterAll(async () => {
  await server.close();
  await rm(join(root, '..'), { recursive: true, force: true });
});

describe('serveStatic', () => {
  test('sends the cross-origin isolation headers with every response', async () => {
    for (const path of ['', 'guide/start.html', 'missing.html']) {
      const response = await fetch(server.url + path);
      for (const [name, value] of Object.entries(ISOLATION_HEADERS)) {
        expect(response.headers.get(name), `${name} on /${path}`).toBe(value);
      }
    }
  });

  test('serves a folder index, a page by its name and a page without its extension', async () => {
    expect(await (await fetch(server.url)).text()).toBe('<h1>home</h1>');
    const withExt = await fetch(`${server.url}guide/start.html`);
    expect(withExt.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await withExt.text()).toBe('<h1>start</h1>');
    expect(await (await fetch(`${server.url}guide/start`)).text()).toBe('<h1>start</h1>');
  });

  test('answers 404 with the site 404 page for a missing file and for a path leaving the root', async () => {
    const missing = await fetch(`${server.url}nope.html`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe('<h1>not found</h1>');
    const escape = await fetch(`${server.url}..%2Fsecret.txt`);
    expect(escape.status).toBe(404);
    expect(await escape.text()).not.toContain('outside the root');
  });

  test('listens on a fresh port each time and stops when closed', async () => {
    const second = await serveStatic(root);
    expect(second.url).not.toBe(server.url);
    await second.close();
    await expect(fetch(second.url)).rejects.toThrow();
  });
});
