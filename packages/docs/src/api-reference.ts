/**
 * Generate the API reference: TypeDoc with typedoc-plugin-markdown over the public entry points
 * of `@sabvm/core` and `@sabvm/workers`, one run per package with that package's own tsconfig,
 * into `api/<package>/`, plus `api/index.md` linking both. The output is generated, never
 * committed (the root `.gitignore` lists `packages/docs/api/`).
 *
 * Run as a script: `node dist/src/api-reference.js` (`npm run api`).
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Application, LogLevel, type TypeDocOptions } from 'typedoc';
import type { PluginOptions } from 'typedoc-plugin-markdown';
import { DOCS_ROOT } from './paths.js';

/** One documented package. */
export interface ApiPackage {
  /** npm name, e.g. `@sabvm/core`. */
  readonly name: string;
  /** Folder under `api/` and in the site's URLs, e.g. `core`. */
  readonly slug: string;
  /** The package folder. */
  readonly dir: string;
  /** Entry points relative to `dir` that exist now (a missing optional one is left out). */
  readonly entryPoints: readonly string[];
}

/**
 * The packages the reference covers, with the entry points present on disk: `src/index.ts` of
 * core and workers, and workers' `src/worker.ts` (the `@sabvm/workers/worker` subpath) when it
 * exists. A package with no entry point yet is left out. Context: any thread; reads the disk.
 */
export function apiPackages(docsRoot: string = DOCS_ROOT): ApiPackage[] {
  const packagesDir = resolve(docsRoot, '..');
  const wanted: readonly [string, string, readonly string[]][] = [
    ['@sabvm/core', 'core', ['src/index.ts']],
    ['@sabvm/workers', 'workers', ['src/index.ts', 'src/worker.ts']],
  ];
  const found: ApiPackage[] = [];
  for (const [name, slug, candidates] of wanted) {
    const dir = join(packagesDir, slug);
    const entryPoints = candidates.filter((entry) => existsSync(join(dir, entry)));
    if (entryPoints.length > 0) found.push({ name, slug, dir, entryPoints });
  }
  return found;
}

/**
 * Run TypeDoc for one package into `outDir`. Throws when TypeDoc cannot convert the project or
 * reports an error. Context: Node main thread; runs the TypeScript compiler (seconds).
 */
export async function generatePackageApi(pkg: ApiPackage, outDir: string): Promise<void> {
  const tsconfig = ['tsconfig.build.json', 'tsconfig.json']
    .map((file) => join(pkg.dir, file))
    .find((file) => existsSync(file));
  const options: TypeDocOptions & Partial<PluginOptions> = {
    name: pkg.name,
    entryPoints: pkg.entryPoints.map((entry) => join(pkg.dir, entry)),
    entryPointStrategy: 'resolve',
    ...(tsconfig === undefined ? {} : { tsconfig }),
    plugin: ['typedoc-plugin-markdown'],
    out: outDir,
    readme: 'none',
    excludeInternal: true,
    excludePrivate: true,
    excludeExternals: true,
    skipErrorChecking: true,
    disableSources: true,
    githubPages: false,
    logLevel: LogLevel.Warn,
    validation: { notExported: false, invalidLink: true, notDocumented: false },
    // The default router gives each member its own page; constants stay on the package page.
    membersWithOwnFile: ['Class', 'Interface', 'Enum', 'Function', 'TypeAlias'],
    entryFileName: 'index',
    hidePageHeader: true,
    hideBreadcrumbs: true,
    useCodeBlocks: true,
    parametersFormat: 'table',
    enumMembersFormat: 'table',
    sanitizeComments: true,
  };
  const app = await Application.bootstrapWithPlugins(options);
  const project = await app.convert();
  if (project === undefined) throw new Error(`TypeDoc could not convert ${pkg.name}`);
  await app.generateOutputs(project);
  if (app.logger.hasErrors()) throw new Error(`TypeDoc reported errors for ${pkg.name}`);
}

/**
 * The import path of an entry point: `src/index.ts` is the package itself, `src/worker.ts` the
 * subpath `<package>/worker`. Context: any thread; pure.
 */
export function importPath(pkg: ApiPackage, entryPoint: string): string {
  const module = moduleName(entryPoint);
  return module === 'index' ? pkg.name : `${pkg.name}/${module}`;
}

/** TypeDoc's name (and output folder) of the module of an entry point: its file name. */
export function moduleName(entryPoint: string): string {
  return basename(entryPoint).replace(/\.ts$/, '');
}

/** The page of a package with several entry points: one link per import path. */
function packageIndex(pkg: ApiPackage): string {
  const lines = [`# ${pkg.name}`, '', 'The package has one module per import path:', ''];
  for (const entry of pkg.entryPoints) {
    lines.push(`- [\`${importPath(pkg, entry)}\`](./${moduleName(entry)}/index.md)`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Regenerate the whole `api/` folder: one subfolder per package and an index page.
 * Context: Node main thread; replaces `api/` on disk.
 */
export async function generateApiReference(docsRoot: string = DOCS_ROOT): Promise<ApiPackage[]> {
  const apiDir = join(docsRoot, 'api');
  await rm(apiDir, { recursive: true, force: true });
  await mkdir(apiDir, { recursive: true });
  const packages = apiPackages(docsRoot);
  for (const pkg of packages) {
    await generatePackageApi(pkg, join(apiDir, pkg.slug));
    if (pkg.entryPoints.length > 1)
      await writeFile(join(apiDir, pkg.slug, 'index.md'), packageIndex(pkg));
  }
  const lines = [
    '# API reference',
    '',
    'Generated by TypeDoc from the TSDoc comments of the public entry points. Every export states',
    'the errors it returns or throws and a `Context:` line: which thread may call it and what it',
    'may block on.',
    '',
    ...packages.map((pkg) => `- [\`${pkg.name}\`](./${pkg.slug}/index.md)`),
    '',
  ];
  await writeFile(join(apiDir, 'index.md'), lines.join('\n'));
  return packages;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const packages = await generateApiReference();
  console.log(`API reference: ${packages.map((pkg) => pkg.name).join(', ')} → api/`);
}
