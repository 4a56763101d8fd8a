/**
 * A tiny static file server for the built site that makes every page cross-origin isolated.
 *
 * The live memory map runs `@sabvm/core` in the browser, and a `SharedArrayBuffer` exists in a
 * page only when the page is cross-origin isolated: its response carries
 * `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp`.
 * `vitepress preview` cannot add headers, so this server replaces it (`npm run docs:preview`),
 * and the browser test serves the site with it.
 *
 * Run as a script: `node dist/src/serve.js [root] [--port N] [--host H]`.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOCS_ROOT } from './paths.js';

/** The headers that make a page cross-origin isolated, sent with every response. */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
};

/** Options of {@link serveStatic}. */
export interface ServeOptions {
  /** Port to listen on; `0` (the default) picks a free one. */
  readonly port?: number;
  /** Interface to listen on; default `127.0.0.1`. */
  readonly host?: string;
}

/** A running server from {@link serveStatic}. */
export interface StaticServer {
  /** Base URL, ending in `/`, e.g. `http://127.0.0.1:40123/`. */
  readonly url: string;
  /** Stop listening and drop open connections. */
  close(): Promise<void>;
}

/**
 * Serve the files under `root` with {@link ISOLATION_HEADERS}. A path names a file, a folder
 * (its `index.html`) or a page without its extension (`/guide/x` → `/guide/x.html`); anything
 * else gets `404.html` with status 404. Paths never leave `root`.
 *
 * Errors: rejects when the port cannot be bound. Context: Node main thread; non-blocking I/O.
 */
export async function serveStatic(root: string, options: ServeOptions = {}): Promise<StaticServer> {
  const base = resolve(root);
  const server = createServer((req, res) => {
    void handle(base, req, res);
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${address.address}:${address.port}/`,
    close: () =>
      new Promise<void>((resolveClose, reject) => {
        server.closeAllConnections();
        server.close((error) => {
          if (error) reject(error);
          else resolveClose();
        });
      }),
  };
}

async function handle(root: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  for (const [name, value] of Object.entries(ISOLATION_HEADERS)) res.setHeader(name, value);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    return;
  }
  const file = await findFile(root, new URL(req.url ?? '/', 'http://localhost').pathname);
  if (file === null) {
    const notFound = join(root, '404.html');
    const exists = await isFile(notFound);
    res.writeHead(404, { 'Content-Type': CONTENT_TYPES['.html'] });
    if (exists && req.method === 'GET') createReadStream(notFound).pipe(res);
    else res.end('404 Not Found');
    return;
  }
  res.writeHead(200, {
    'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    'Cache-Control': 'no-cache',
  });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
}

/** The file a URL path names under `root`, or `null`. */
async function findFile(root: string, pathname: string): Promise<string | null> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  const path = normalize(join(root, decoded));
  if (path !== root && !path.startsWith(root + sep)) return null;
  const candidates = decoded.endsWith('/')
    ? [join(path, 'index.html')]
    : [path, `${path}.html`, join(path, 'index.html')];
  for (const candidate of candidates) {
    if (await isFile(candidate)) return candidate;
  }
  return null;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** `node dist/src/serve.js [root] [--port N] [--host H]`: serve the built site until killed. */
async function main(argv: readonly string[]): Promise<void> {
  let root = join(DOCS_ROOT, '.vitepress', 'dist');
  let port = 4173;
  let host = '127.0.0.1';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--port') port = Number(argv[++i]);
    else if (arg === '--host') host = argv[++i] ?? host;
    else root = resolve(arg);
  }
  if (!(await isFile(join(root, 'index.html')))) {
    console.error(`serve: ${root} has no index.html; build the site first with \`npm run docs\``);
    process.exitCode = 1;
    return;
  }
  const server = await serveStatic(root, { port, host });
  console.log(`sabvm docs (cross-origin isolated) at ${server.url}`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main(process.argv.slice(2));
}
