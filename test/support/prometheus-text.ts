/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), for tests: it throws
 * on any line the format does not allow instead of skipping it. Checked: metric and label names,
 * label value escapes (\\ \" \n), sample values (floats, ±Inf and NaN in any case), optional integer
 * timestamps, at most one HELP and TYPE per family and TYPE before its samples, a family's lines
 * kept together, no duplicate series, and histograms whole (every series has a `+Inf` bucket
 * equal to its `_count`, cumulative buckets that never decrease, and a `_sum`).
 *
 * Why not the npm package `parse-prometheus-text-format` (1.1.1): it merges the series of a
 * labelled histogram whose `le` comes first (prom-client writes `le` first, e.g.
 * `nodejs_gc_duration_seconds_bucket{le="0.001",kind="minor"}`) and accepts non-numbers as values,
 * so it could not tell us that the endpoint's text is right.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** The sample's own name (e.g. `x_bucket`, `x_sum`). */
  name: string;
  labels: Record<string, string>;
  value: number;
  timestampMs?: number;
}

export interface Family {
  name: string;
  help?: string;
  type: MetricType;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export class ExpositionError extends Error {
  constructor(lineNo: number, line: string, why: string) {
    super(`line ${lineNo}: ${why}: ${JSON.stringify(line)}`);
  }
}

/** As Prometheus reads a value (Go's ParseFloat): Inf and NaN in any case (prom-client writes `Nan`). */
function parseValue(text: string): number | undefined {
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(text);
  if (special) return special[2].toLowerCase() === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return undefined;
  return Number(text);
}

/** Reads `{a="b",c="d"}` from `s` at `i` (at the `{`); returns the labels and the index after `}`. */
function parseLabels(s: string, i: number, fail: (why: string) => never): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++; // {
  for (;;) {
    if (s[i] === '}') return [labels, i + 1];
    const eq = s.indexOf('=', i);
    if (eq < 0) fail('label without =');
    const name = s.slice(i, eq).trim();
    if (!LABEL_NAME.test(name)) fail(`bad label name ${name}`);
    if (name in labels) fail(`label ${name} twice`);
    i = eq + 1;
    if (s[i] !== '"') fail('label value not quoted');
    i++;
    let value = '';
    for (;;) {
      const c = s[i];
      if (c === undefined) fail('unterminated label value');
      if (c === '"') break;
      if (c === '\\') {
        const n = s[i + 1];
        if (n === '\\') value += '\\';
        else if (n === '"') value += '"';
        else if (n === 'n') value += '\n';
        else fail(`bad escape \\${n}`);
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    labels[name] = value;
    i++; // closing quote
    if (s[i] === ',') i++;
    else if (s[i] !== '}') fail('expected , or } after a label');
  }
}

/** The family a sample belongs to: its own name, or without a histogram/summary suffix. */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  for (const suffix of ['_bucket', '_sum', '_count', '']) {
    if (suffix && !name.endsWith(suffix)) continue;
    const f = families.get(name.slice(0, name.length - suffix.length));
    if (!f) continue;
    if (suffix === '') return f;
    if (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket')) return f;
  }
  return undefined;
}

export function parseExposition(text: string): Family[] {
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  const seen = new Set<string>();
  let current: Family | undefined;
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((line, idx) => {
    const fail = (why: string): never => {
      throw new ExpositionError(idx + 1, line, why);
    };
    if (line.trim() === '') return;
    const enter = (f: Family) => {
      if (current !== f) {
        if (current) closed.add(current.name);
        if (closed.has(f.name)) fail(`the lines of ${f.name} are not together`);
        current = f;
      }
    };
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!m) return; // another comment
      const [, kind, name, rest = ''] = m;
      if (!NAME.test(name)) fail('bad metric name');
      let f = families.get(name);
      if (!f) {
        f = { name, type: 'untyped', samples: [] };
        families.set(name, f);
      }
      enter(f);
      if (kind === 'HELP') {
        if (f.help !== undefined) fail('a second HELP');
        f.help = rest.replace(/\\(\\|n)/g, (_x, c: string) => (c === 'n' ? '\n' : '\\'));
      } else {
        if ((f as Family & { typed?: boolean }).typed) fail('a second TYPE');
        if (f.samples.length) fail('TYPE after samples');
        if (!TYPES.has(rest.trim())) fail(`unknown type ${rest}`);
        f.type = rest.trim() as MetricType;
        (f as Family & { typed?: boolean }).typed = true;
      }
      return;
    }
    const nameEnd = line.search(/[{\s]/);
    if (nameEnd <= 0) fail('no value');
    const name = line.slice(0, nameEnd);
    if (!NAME.test(name)) fail('bad metric name');
    let labels: Record<string, string> = {};
    let i = nameEnd;
    if (line[i] === '{') [labels, i] = parseLabels(line, i, fail);
    const rest = line.slice(i);
    const parts = rest.trim().split(/\s+/);
    if (!/^\s/.test(rest) || parts.length < 1 || parts.length > 2 || parts[0] === '') fail('expected " value [timestamp]"');
    const value = parseValue(parts[0]);
    if (value === undefined) fail(`bad value ${parts[0]}`);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) fail(`bad timestamp ${parts[1]}`);
    let f = familyOf(name, families);
    if (!f) {
      f = { name, type: 'untyped', samples: [] };
      families.set(name, f);
    }
    enter(f);
    if (name.endsWith('_bucket') && f.type === 'histogram' && !('le' in labels)) fail('a bucket without le');
    const key = name + JSON.stringify(Object.entries(labels).sort());
    if (seen.has(key)) fail('the same series twice');
    seen.add(key);
    f.samples.push({ name, labels, value: value as number, timestampMs: parts[1] === undefined ? undefined : Number(parts[1]) });
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return [...families.values()];
}

function checkHistogram(f: Family): void {
  const series = new Map<string, { buckets: Array<[number, number]>; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const e = series.get(key) ?? { buckets: [] };
    series.set(key, e);
    if (s.name === `${f.name}_bucket`) e.buckets.push([parseValue(le) ?? NaN, s.value]);
    else if (s.name === `${f.name}_sum`) e.sum = s.value;
    else if (s.name === `${f.name}_count`) e.count = s.value;
    else throw new Error(`${f.name}: a histogram sample ${s.name}`);
  }
  for (const [key, e] of series) {
    const where = `${f.name}${key}`;
    if (e.sum === undefined || e.count === undefined) throw new Error(`${where}: no _sum or _count`);
    const sorted = [...e.buckets].sort((a, b) => a[0] - b[0]);
    if (sorted.some(([le]) => Number.isNaN(le))) throw new Error(`${where}: a bad le`);
    const inf = sorted.at(-1);
    if (!inf || inf[0] !== Infinity) throw new Error(`${where}: no +Inf bucket`);
    if (inf[1] !== e.count) throw new Error(`${where}: +Inf bucket ${inf[1]} is not _count ${e.count}`);
    for (let i = 1; i < sorted.length; i++) if (sorted[i][1] < sorted[i - 1][1]) throw new Error(`${where}: buckets not cumulative`);
  }
}

/** A histogram series' buckets (le → count), count and sum, for the labels given (besides le). */
export function histogram(f: Family, labels: Record<string, string> = {}): { buckets: Map<number, number>; count: number; sum: number } {
  const match = (s: Sample) => Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  const buckets = new Map<number, number>();
  let count = NaN;
  let sum = NaN;
  for (const s of f.samples.filter(match)) {
    if (s.name.endsWith('_bucket')) buckets.set(parseValue(s.labels.le) as number, s.value);
    else if (s.name.endsWith('_count')) count = s.value;
    else if (s.name.endsWith('_sum')) sum = s.value;
  }
  return { buckets, count, sum };
}
