/**
 * The generated API reference lists every export of `@sabvm/core` and `@sabvm/workers`: every
 * name each entry point exports (as the TypeScript compiler sees it — the same names as its
 * `index.d.ts`), every runtime export of core, and every public member of every exported class.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';
import { apiPackages, importPath, moduleName, type ApiPackage } from '../src/api-reference.js';
import { API_DIR } from './site.js';

const KIND_FOLDERS = [
  'classes',
  'functions',
  'interfaces',
  'type-aliases',
  'enumerations',
  'variables',
];

interface EntryExports {
  readonly names: string[];
  readonly classMembers: Map<string, string[]>;
}

const exportsCache = new Map<string, EntryExports>();

/** Exported names of an entry point, and the public members of each exported class. */
function exportsOf(entryFile: string): EntryExports {
  const cached = exportsCache.get(entryFile);
  if (cached !== undefined) return cached;
  const found = readExports(entryFile);
  exportsCache.set(entryFile, found);
  return found;
}

function readExports(entryFile: string): EntryExports {
  const program = ts.createProgram([entryFile], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    noEmit: true,
    types: ['node'],
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entryFile);
  const moduleSymbol = source === undefined ? undefined : checker.getSymbolAtLocation(source);
  if (moduleSymbol === undefined) throw new Error(`cannot read the exports of ${entryFile}`);
  const names: string[] = [];
  const classMembers = new Map<string, string[]>();
  for (const exported of checker.getExportsOfModule(moduleSymbol)) {
    names.push(exported.name);
    const symbol =
      exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    if (!(symbol.flags & ts.SymbolFlags.Class)) continue;
    const instance = checker.getDeclaredTypeOfSymbol(symbol).getProperties();
    const statics = checker
      .getTypeOfSymbol(symbol)
      .getProperties()
      .filter((member) => member.name !== 'prototype');
    classMembers.set(
      exported.name,
      [...instance, ...statics].filter(isPublicDocumented).map((member) => member.name),
    );
  }
  return { names, classMembers };
}

function isPublicDocumented(member: ts.Symbol): boolean {
  if (member.name.startsWith('#') || member.name.startsWith('__')) return false;
  const declarations = member.getDeclarations() ?? [];
  if (declarations.length === 0) return false;
  return declarations.every((declaration) => {
    const modifiers = ts.getCombinedModifierFlags(declaration);
    if (modifiers & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) return false;
    if (ts.getJSDocTags(declaration).some((tag) => tag.tagName.text === 'internal')) return false;
    // Members inherited from the platform (Error's message, stack, captureStackTrace…) are not
    // this package's: they are declared under node_modules (TypeScript's lib, @types/node).
    return !declaration.getSourceFile().fileName.includes('/node_modules/');
  });
}

const unescape = (text: string): string => text.replace(/\\(.)/g, '$1');

/** Headings of a Markdown file, unescaped, without trailing `()`. */
function headings(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => /^#{1,6} /.test(line))
    .map((line) =>
      unescape(line.replace(/^#+ /, ''))
        .replace(/\(\)$/, '')
        .replace(/^(Class|Interface|Function|Type Alias|Enumeration|Variable): /, '')
        .trim(),
    );
}

/** Names documented for one module: a page per class, function, interface…, a heading per constant. */
function documentedNames(moduleDir: string): Map<string, string> {
  const names = new Map<string, string>();
  for (const folder of KIND_FOLDERS) {
    const dir = join(moduleDir, folder);
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir))
      if (file.endsWith('.md')) names.set(file.slice(0, -3), join(dir, file));
  }
  for (const heading of headings(join(moduleDir, 'index.md')))
    if (!names.has(heading)) names.set(heading, join(moduleDir, 'index.md'));
  return names;
}

function moduleDir(pkg: ApiPackage, entry: string): string {
  return pkg.entryPoints.length > 1
    ? join(API_DIR, pkg.slug, moduleName(entry))
    : join(API_DIR, pkg.slug);
}

describe('the API reference', () => {
  const packages = apiPackages();

  test('covers both packages and every entry point they publish', () => {
    expect(packages.map((pkg) => pkg.name)).toEqual(['@sabvm/core', '@sabvm/workers']);
    expect(packages.find((pkg) => pkg.slug === 'workers')?.entryPoints).toEqual([
      'src/index.ts',
      'src/worker.ts',
    ]);
    const index = readFileSync(join(API_DIR, 'index.md'), 'utf8');
    for (const pkg of packages) expect(index).toContain(`./${pkg.slug}/index.md`);
  });

  for (const pkg of apiPackages()) {
    for (const entry of pkg.entryPoints) {
      test(`lists every export of ${importPath(pkg, entry)}`, () => {
        const { names } = exportsOf(join(pkg.dir, entry));
        expect(names.length).toBeGreaterThan(0);
        const documented = documentedNames(moduleDir(pkg, entry));
        const missing = names.filter((name) => !documented.has(name));
        expect(missing, `exports of ${importPath(pkg, entry)} missing from api/`).toEqual([]);
      });

      test(`documents every public member of each class of ${importPath(pkg, entry)}`, () => {
        const { classMembers } = exportsOf(join(pkg.dir, entry));
        const documented = documentedNames(moduleDir(pkg, entry));
        for (const [name, members] of classMembers) {
          const page = documented.get(name);
          expect(page, `a page for class ${name}`).toBeDefined();
          const onPage = new Set(headings(page ?? ''));
          const missing = members.filter((member) => !onPage.has(member));
          expect(missing, `members of ${name} missing from ${page ?? ''}`).toEqual([]);
        }
      });
    }
  }

  test('lists every runtime export of @sabvm/core', async () => {
    const core = (await import('@sabvm/core')) as Record<string, unknown>;
    const documented = documentedNames(join(API_DIR, 'core'));
    const missing = Object.keys(core).filter((name) => !documented.has(name));
    expect(Object.keys(core).length).toBeGreaterThan(0);
    expect(missing).toEqual([]);
  });
});
