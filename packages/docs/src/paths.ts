/**
 * Where the docs package lives, whether this code runs from `src/` (tests) or `dist/src/` (scripts).
 *
 * @module
 */
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The docs package folder (the site's source root). */
export const DOCS_ROOT: string =
  basename(dirname(here)) === 'dist' ? resolve(here, '../..') : resolve(here, '..');
