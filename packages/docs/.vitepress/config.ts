/**
 * VitePress configuration of the sabvm documentation site.
 *
 * - Every response of the dev server carries the cross-origin isolation headers (COOP/COEP), so
 *   the live memory map can create a `SharedArrayBuffer`; `npm run docs:preview` serves the built
 *   site with the same headers (`src/serve.ts`).
 * - The API reference is generated into `api/` by `npm run api` (TypeDoc); its sidebar is read
 *   from the generated files when the site is built.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DefaultTheme, UserConfig } from 'vitepress';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The isolation headers; the same values as `ISOLATION_HEADERS` in `src/serve.ts`. */
const isolationHeaders: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** Sidebar titles of TypeDoc's output folders, in the order shown. */
const apiKinds: readonly (readonly [string, string])[] = [
  ['classes', 'Classes'],
  ['functions', 'Functions'],
  ['interfaces', 'Interfaces'],
  ['type-aliases', 'Type aliases'],
  ['enumerations', 'Enumerations'],
  ['variables', 'Variables'],
];

function markdownNames(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((file) => file.endsWith('.md') && file !== 'index.md')
    .map((file) => file.slice(0, -'.md'.length))
    .sort((a, b) => a.localeCompare(b));
}

/** Sidebar items for the pages under `api/<base>` (one package, or one module of a package). */
function apiKindItems(dir: string, link: string): DefaultTheme.SidebarItem[] {
  const items: DefaultTheme.SidebarItem[] = [];
  for (const [folder, title] of apiKinds) {
    const names = markdownNames(join(dir, folder));
    if (names.length === 0) continue;
    items.push({
      text: title,
      collapsed: true,
      items: names.map((name) => ({ text: name, link: `${link}${folder}/${name}` })),
    });
  }
  return items;
}

/** The API sidebar, read from what TypeDoc generated (empty until `npm run api` has run). */
function apiSidebar(): DefaultTheme.SidebarItem[] {
  const apiDir = join(root, 'api');
  const packages: DefaultTheme.SidebarItem[] = [];
  for (const [slug, name] of [
    ['core', '@sabvm/core'],
    ['workers', '@sabvm/workers'],
  ] as const) {
    const dir = join(apiDir, slug);
    if (!existsSync(join(dir, 'index.md'))) continue;
    const items = apiKindItems(dir, `/api/${slug}/`);
    // A package with several entry points gets one folder per module.
    for (const module of readdirSync(dir, { withFileTypes: true })) {
      if (!module.isDirectory() || apiKinds.some(([folder]) => folder === module.name)) continue;
      const moduleDir = join(dir, module.name);
      if (!existsSync(join(moduleDir, 'index.md'))) continue;
      items.push({
        text: module.name === 'index' ? name : `${name}/${module.name}`,
        link: `/api/${slug}/${module.name}/`,
        collapsed: true,
        items: apiKindItems(moduleDir, `/api/${slug}/${module.name}/`),
      });
    }
    packages.push({ text: name, link: `/api/${slug}/`, items });
  }
  return [{ text: 'API reference', link: '/api/', items: packages }];
}

const guideSidebar: DefaultTheme.SidebarItem[] = [
  {
    text: 'Guide',
    items: [
      { text: 'Getting started', link: '/guide/getting-started' },
      { text: 'Workers and process models', link: '/guide/workers' },
      { text: 'Typed views and contiguity', link: '/guide/views' },
      { text: 'Benchmarks', link: '/guide/bench' },
      { text: 'Hosting the site', link: '/guide/hosting' },
    ],
  },
  {
    text: 'Concepts',
    items: [
      { text: 'Architecture', link: '/concepts/architecture' },
      { text: 'Physical memory and frames', link: '/concepts/physical-memory' },
      { text: 'The vmalloc family', link: '/concepts/vmalloc' },
      { text: 'kmalloc and slab caches', link: '/concepts/kmalloc' },
      { text: 'Ring buffers', link: '/concepts/ringbuf' },
      { text: 'Address spaces and VMAs', link: '/concepts/address-spaces' },
      { text: 'Page tables and PTEs', link: '/concepts/page-tables' },
      { text: 'remapPartial', link: '/concepts/remap-partial' },
      { text: 'Lifetimes and references', link: '/concepts/lifetimes' },
      { text: 'Threads and grace periods', link: '/concepts/threads' },
    ],
  },
  {
    text: 'See it',
    items: [
      { text: 'Live memory map', link: '/memory-map' },
      { text: 'Glossary', link: '/glossary' },
    ],
  },
];

const config: UserConfig<DefaultTheme.Config> = {
  title: 'sabvm',
  description:
    'A kernel-style memory system for Node.js worker threads: vmalloc, address spaces, page tables and remapPartial inside one SharedArrayBuffer.',
  lang: 'en-US',
  head: [['link', { rel: 'icon', type: 'image/svg+xml', href: '/favicon.svg' }]],
  cleanUrls: false,
  lastUpdated: false,
  srcExclude: ['README.md', 'dist/**', 'test/**', 'test-results/**', 'examples/**', 'src/**'],
  markdown: { lineNumbers: false },
  themeConfig: {
    nav: [
      { text: 'Guide', link: '/guide/getting-started' },
      { text: 'Concepts', link: '/concepts/physical-memory' },
      { text: 'Live memory map', link: '/memory-map' },
      { text: 'API', link: '/api/' },
    ],
    sidebar: {
      '/api/': apiSidebar(),
      '/': guideSidebar,
    },
    outline: { level: [2, 3] },
    search: { provider: 'local' },
  },
  vite: {
    plugins: [
      {
        name: 'sabvm-cross-origin-isolation',
        configureServer(server) {
          server.middlewares.use((_req, res, next) => {
            for (const [name, value] of Object.entries(isolationHeaders))
              res.setHeader(name, value);
            next();
          });
        },
        configurePreviewServer(server) {
          server.middlewares.use((_req, res, next) => {
            for (const [name, value] of Object.entries(isolationHeaders))
              res.setHeader(name, value);
            next();
          });
        },
      },
    ],
    server: { headers: { ...isolationHeaders } },
    preview: { headers: { ...isolationHeaders } },
    worker: { format: 'es' },
  },
};

export default config;
