/**
 * Which files and folders the watcher looks at: the include/exclude globs and the temp/lock/system
 * patterns, built once from the options.
 */
import type * as fs from 'fs';
import { badInput } from '../../lib/http/errors';
import { compileGlob, CompiledPattern, DEFAULT_TEMP_PATTERNS, matchesAny, parsePatternList } from './glob';
import { errText, relPath } from './types';

export interface FilterOptions {
  /** The watched folder (chokidar hands over absolute paths). */
  folder: string;
  recursive: boolean;
  include?: string | string[];
  exclude?: string | string[];
  ignoreTempFiles?: boolean;
}

export class WatchFilters {
  private readonly folder: string;
  private readonly recursive: boolean;
  private readonly include: CompiledPattern[];
  private readonly exclude: CompiledPattern[];
  private readonly temp: CompiledPattern[];

  /** Throws `folder.badPattern` for an include/exclude glob that does not compile. */
  constructor(opts: FilterOptions) {
    this.folder = opts.folder;
    this.recursive = opts.recursive;
    const include = parsePatternList(opts.include);
    this.include = (include.length ? include : ['*']).map(compilePattern);
    this.exclude = parsePatternList(opts.exclude).map(compilePattern);
    this.temp = opts.ignoreTempFiles === false ? [] : DEFAULT_TEMP_PATTERNS.map((p) => compileGlob(p));
  }

  /** A folder (relative path) the watcher never enters: temp/dot folders and excluded ones. */
  dirIgnored(rel: string): boolean {
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    if (matchesAny(this.temp, rel, base)) return true;
    return matchesAny(this.exclude, rel, base) || matchesAny(this.exclude, rel + '/', base);
  }

  /** A file (relative path) the watcher does not send. */
  fileIgnored(rel: string): boolean {
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    if (matchesAny(this.temp, rel, base) || matchesAny(this.exclude, rel, base)) return true;
    return !matchesAny(this.include, rel, base);
  }

  /** chokidar's `ignored`: called once without stats, then with them. */
  chokidarIgnored(abs: string, stats?: fs.Stats): boolean {
    const rel = relPath(this.folder, abs);
    if (rel === '' || rel.startsWith('..')) return false;
    if (!stats) {
      const base = rel.slice(rel.lastIndexOf('/') + 1);
      return matchesAny(this.temp, rel, base) || matchesAny(this.exclude, rel, base);
    }
    if (stats.isDirectory()) return !this.recursive || this.dirIgnored(rel);
    return this.fileIgnored(rel);
  }
}

/** An include/exclude glob, or a clear error naming the pattern (e.g. a reversed range `[z-a]`). */
function compilePattern(pattern: string): CompiledPattern {
  try {
    return compileGlob(pattern);
  } catch (err) {
    throw badInput('folder.badPattern', { pattern, reason: errText(err) });
  }
}
