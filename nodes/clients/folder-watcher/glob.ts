/**
 * A small glob matcher for include/exclude patterns (Node 20's `path.matchesGlob` is experimental
 * and prints a warning, so we do not use it).
 *
 * Supported: `*` (any characters except `/`), `?` (one character except `/`), `**` (any number of
 * path segments, including none), `[abc]` / `[a-z]` / `[!abc]`, `{a,b,c}` alternatives.
 * Paths are relative to the watched folder and always use `/`.
 *
 * A pattern without a `/` is matched against the file's name only (so `*.csv` matches `run1/a.csv`
 * in a recursive watch); a pattern with a `/` is matched against the whole relative path.
 */

export interface CompiledPattern {
  source: string;
  /** true when the pattern has no `/` and is matched against the base name. */
  baseOnly: boolean;
  re: RegExp;
}

function escapeRe(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? '\\' + ch : ch;
}

/** Translates one glob into a RegExp source (anchored by the caller). */
function globToRe(glob: string): string {
  let re = '';
  let braceDepth = 0;
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '*') {
      if (glob[i + 1] === '*') {
        // `**`: any number of segments. `**/` may also match nothing at all.
        i++;
        if (glob[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end === -1) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, end);
      let neg = false;
      if (body[0] === '!' || body[0] === '^') {
        neg = true;
        body = body.slice(1);
      }
      body = body.replace(/[\\\]^]/g, (c) => '\\' + c);
      re += neg ? `[^/${body}]` : `[${body}]`;
      i = end;
    } else if (ch === '{') {
      braceDepth++;
      re += '(?:';
    } else if (ch === '}' && braceDepth > 0) {
      braceDepth--;
      re += ')';
    } else if (ch === ',' && braceDepth > 0) {
      re += '|';
    } else if (ch === '\\' && i + 1 < glob.length) {
      re += escapeRe(glob[++i]);
    } else {
      re += escapeRe(ch);
    }
  }
  while (braceDepth-- > 0) re += ')';
  return re;
}

export function compileGlob(pattern: string, caseInsensitive = process.platform === 'win32'): CompiledPattern {
  let p = pattern.trim().replace(/\\(?![[\]{}*?!,])/g, '/');
  if (p.startsWith('./')) p = p.slice(2);
  if (p.startsWith('/')) p = p.slice(1);
  const baseOnly = !p.includes('/');
  return { source: pattern, baseOnly, re: new RegExp(`^${globToRe(p)}$`, caseInsensitive ? 'i' : '') };
}

/** Splits a comma-separated pattern list (`"*.csv, *.txt"`), ignoring empty items. */
export function parsePatternList(list: string | string[] | undefined): string[] {
  if (list === undefined) return [];
  const items = Array.isArray(list) ? list : splitTopLevelCommas(list);
  return items.map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Commas inside `{a,b}` belong to the pattern, not to the list. */
function splitTopLevelCommas(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '{') depth++;
    else if (ch === '}' && depth > 0) depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** `relPath` uses `/`; `baseName` is its last segment. */
export function matchesAny(patterns: CompiledPattern[], relPath: string, baseName: string): boolean {
  for (const p of patterns) {
    if (p.re.test(p.baseOnly ? baseName : relPath)) return true;
  }
  return false;
}

/** Temporary, lock and system files every instrument PC produces; ignored unless turned off. */
export const DEFAULT_TEMP_PATTERNS = [
  '~$*',
  '*.tmp',
  '*.temp',
  '*.part',
  '*.partial',
  '*.crdownload',
  '*.lock',
  '.~lock*',
  '.DS_Store',
  'Thumbs.db',
  'desktop.ini',
  '.*', // any dot-file or dot-folder
];
