/**
 * Bounded history: does Node-RED start as fast, and stay as small, after 100,000 finished files?
 *
 * 1. Produce: the "Instrument CSV → Benchling run" example in a real `node-red` process against
 *    the lab simulator; S instrument files (default 250) are dropped into the watched folder over
 *    ~30 s, the bench waits until every one is archived and its journey is in the history, then
 *    stops Node-RED cleanly (SIGINT). Whatever the pack left under `<userDir>/labwire-state/` is
 *    the sample.
 * 2. Scale: every file under `labwire-state/` is rewritten as it would be after N files (default
 *    100,000): each JSON-lines record is replicated N/S times (the last copy partial), copy c
 *    with the instrument file index moved by c·S, id-like strings (uuids, `prefix_abc123`) and
 *    unmatched journal keys made unique with same-length replacements, and epoch/ISO timestamps
 *    moved back by up to 29 days; a file whose name holds a date (history day files) gets each
 *    copy's records under the copy's date; a file of journal records ({k, v} / {k, d}) is
 *    compacted as the Journal does while appending (> 2 × live + 1000 records). No state file is
 *    special-cased by name.
 * 3. Measure: a baseline user directory (same flows, credentials, settings, empty
 *    `labwire-state/`) and the scaled subject, each started R times (alternating, the state
 *    restored before every start because the journals compact on open): time from spawn to
 *    "Started flows" in the log and to the first 200 from GET /flows; RSS (VmRSS) 3 s after
 *    "Started flows" and again after a forced GC (SIGWINCH to a preloaded handler); VmHWM (peak).
 *    The simulator keeps running, as the lab's services would after a PC restart.
 *
 * Targets: subject − baseline start-up (Started flows, median) ≤ 0.5 s; RSS ≤ 30 MB.
 *
 *   node dist/bench/history.js [files] [repeats]     (env: BENCH_HISTORY_SAMPLE, BENCH_HISTORY_KEEP=1)
 */
import { ChildProcess, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { startLabSimulator, DEFAULT_API_KEY, LabSimulator } from '../simulator';
import { freePort, readExample, startNodeRed, NodeRedProcess } from '../scripts/node-red-process';
import { resultsLoopEnv } from '../scripts/example-env';

const DAY_MS = 24 * 3600_000;
const MB = 1e6;

export interface HistoryBenchOptions {
  /** Finished files the scaled state stands for (default 100,000). */
  files?: number;
  /** Files really run through the pipeline (default 250, at most `files`). */
  sample?: number;
  /** Starts of each user directory (default 5). */
  repeats?: number;
  /** Wait after "Started flows" before reading RSS (default 3000 ms). */
  settleMs?: number;
  /** Keep the temporary directory (for a look at the state). */
  keep?: boolean;
  log?: (line: string) => void;
}

export interface StartMeasure {
  startedFlowsS: number;
  getFlowsS: number;
  rssMB: number;
  rssAfterGcMB: number;
  heapUsedAfterGcMB: number;
  peakRssMB: number;
  /** Finished files the operator's list counted (done + failed) before RSS was read. */
  historyCounted: number;
}

export interface StateFileFigures {
  file: string;
  sampleBytes: number;
  sampleRecords: number;
  scaledBytes: number;
  scaledRecords: number;
  bytesPerFile: number;
  recordsPerFile: number;
  loadedAtStart: string;
  /** Journals: records appended over the N files (the file holds fewer: it is compacted). */
  appendedRecords?: number;
}

interface Stats {
  median: number;
  min: number;
  max: number;
}

/** GET `url` as JSON (status 0 when there was no answer). */
function httpJson(url: string, timeoutMs: number): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve) => {
    const req = http.get(url, { headers: { 'Node-RED-API-Version': 'v1', Accept: 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch {
          resolve({ status: res.statusCode ?? 0, body: text });
        }
      });
      res.on('error', () => resolve({ status: 0, body: null }));
    });
    req.on('error', () => resolve({ status: 0, body: null }));
    req.setTimeout(timeoutMs, () => req.destroy());
  });
}

/** One journal opened alone in a fresh process (Journal.open on a copy): what it costs at start. */
export interface JournalLoad {
  file: string;
  openMs: number;
  liveEntries: number;
  heapMB: number;
  rssMB: number;
  bytesAfterCompact: number;
}

export interface HistoryBenchResult {
  files: number;
  sample: number;
  repeats: number;
  stateFiles: StateFileFigures[];
  stateBytes: number;
  stateBytesPerFile: number;
  journalLoads: JournalLoad[];
  baseline: Record<keyof StartMeasure, Stats>;
  subject: Record<keyof StartMeasure, Stats>;
  diff: Record<keyof StartMeasure, number>;
  runs: Array<{ which: 'baseline' | 'subject' } & StartMeasure>;
  startupPass: boolean;
  rssPass: boolean;
}

// ---------------------------------------------------------------------------------------------
// helpers

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: m, min: s[0], max: s[s.length - 1] };
}

function walk(dir: string): string[] {
  const out: string[] = [];
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

function countLines(file: string): number {
  const b = fs.readFileSync(file);
  let n = 0;
  for (let i = 0; i < b.length; i++) if (b[i] === 10) n++;
  return n;
}

async function httpStatus(url: string, timeoutMs: number): Promise<number> {
  return (await httpJson(url, timeoutMs)).status;
}

function procStatusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

const live = new Set<ChildProcess>();
function killAll(): void {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 1. produce the real state

/** A realistic plate-reader export name; the 6-digit plate index is what a copy moves. */
function instrumentFileName(i: number, when: Date): string {
  const d = when.toISOString().slice(0, 10).replace(/-/g, '');
  return `EnVision-2104_${d}_run${String(Math.floor(i / 24) + 1).padStart(3, '0')}_plate-${String(i).padStart(6, '0')}.csv`;
}
const PLATE_INDEX = /plate-(\d{6})/g;

function plateCsv(i: number): string {
  const rows = ['Plate,Repeat,Well,Type,Result,Signal', `plate-${i},1,,,,`];
  for (const r of 'ABCDEFGH') for (let c = 1; c <= 12; c++) rows.push(`${i},1,${r}${String(c).padStart(2, '0')},S,${(((i * 7 + c * 13 + r.charCodeAt(0)) % 997) / 1000).toFixed(3)},${(i * 31 + c) % 60000}`);
  return rows.join('\r\n') + '\r\n';
}

function exampleFlow(): unknown[] {
  return readExample('01 - Instrument CSV to Benchling run').map((n) => {
    if (n.type === 'benchling-tenant') return { ...n, rateLimit: 100_000, credentials: { apiKey: DEFAULT_API_KEY } };
    if (n.type === 'lab-watch-folder') return { ...n, stability: 0.4, rescanInterval: 2 };
    if (n.type === 'benchling-poll-task') return { ...n, interval: 0.1, maxInterval: 0.3 };
    return n;
  });
}

async function produce(o: { sample: number; userDir: string; instrument: string; archive: string; port: number; env: Record<string, string>; sim: LabSimulator; log: (s: string) => void }): Promise<number> {
  const nrLog: string[] = [];
  let red: NodeRedProcess | undefined;
  const t0 = Date.now();
  try {
    red = await startNodeRed({ userDir: o.userDir, port: o.port, env: o.env, onLog: (l) => nrLog.push(l) });
    live.add(red.child);
    await red.deploy(exampleFlow());
    const spreadMs = 30_000;
    for (let i = 0; i < o.sample; i++) {
      fs.writeFileSync(path.join(o.instrument, instrumentFileName(i, new Date())), plateCsv(i));
      await sleep(spreadMs / o.sample);
    }
    const historyDir = path.join(o.userDir, 'labwire-state', 'history');
    const historyRecords = () => walk(historyDir).reduce((n, f) => n + countLines(f), 0);
    const stateSize = () => walk(path.join(o.userDir, 'labwire-state')).reduce((n, f) => n + fs.statSync(f).size, 0);
    const deadline = Date.now() + 15 * 60_000;
    for (;;) {
      const archived = fs.existsSync(o.archive) ? fs.readdirSync(o.archive).length : 0;
      const waiting = fs.readdirSync(o.instrument).length;
      const hist = historyRecords();
      if (archived >= o.sample && waiting === 0 && hist >= o.sample) break;
      if (Date.now() > deadline) throw new Error(`produce: after 15 min ${archived} of ${o.sample} archived, ${waiting} waiting, ${hist} in the history`);
      await sleep(500);
    }
    // Idle: nothing under labwire-state changed for 2 s (the pipeline's last writes landed).
    let size = stateSize();
    for (let quiet = 0; quiet < 4; ) {
      await sleep(500);
      const s = stateSize();
      quiet = s === size ? quiet + 1 : 0;
      size = s;
    }
    const tasks = o.sim.benchling.listTasks().filter((t) => t.status === 'SUCCEEDED').length;
    o.log(`  produced: ${o.sample} files archived, ${tasks} tasks succeeded, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await red.stop();
    live.delete(red.child);
    red = undefined;
    const errors = nrLog.filter((l) => /\[(error)\]/.test(l));
    if (errors.length) o.log(`  (Node-RED logged ${errors.length} error lines while producing; first: ${errors[0]})`);
    return (Date.now() - t0) / 1000;
  } finally {
    if (red) {
      await red.stop('SIGKILL');
      live.delete(red.child);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 2. scale the state to N files

/** Tokens that identify one file's journey: uuids, hex ids (12+), `aop_uHFIOYga`-like ids. */
const ID_TOKEN = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-f]{12,}\b|\b[a-z]{2,6}_[A-Za-z0-9]{6,}\b/gi;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const DATE_IN_NAME = /(\d{4}-\d{2}-\d{2})/;
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function digest(s: string): Buffer {
  return crypto.createHash('sha256').update(s).digest();
}

/** Same length, same character classes, unique per (original, copy). */
function sameShape(orig: string, copy: number): string {
  const h = digest(`${orig}#${copy}`);
  let out = '';
  for (let i = 0; i < orig.length; i++) {
    const ch = orig[i];
    const b = h[i % h.length] ^ (i >> 5);
    if (/[0-9]/.test(ch) && !/[A-Za-z]/.test(orig)) out += String(b % 10);
    else if (/[0-9a-f]/.test(ch) && /^[0-9a-f]+$/.test(orig)) out += (b % 16).toString(16);
    else if (/[A-Za-z0-9]/.test(ch)) out += ALNUM[b % ALNUM.length];
    else out += ch;
  }
  return out;
}

class Scaler {
  constructor(
    private readonly sample: number,
    /** Node ids and the flow's settings (run id…): the same for every file, never changed. */
    private readonly keep: Set<string>,
  ) {}

  shiftMs(copy: number, copies: number): number {
    // Copies spread evenly over today and the 29 days before (within a 30-day retention).
    return copies <= 1 ? 0 : -Math.floor((copy * 30) / copies) * DAY_MS;
  }

  private token(t: string, copy: number): string {
    if (/^\d+$/.test(t) || this.keep.has(t)) return t;
    if (UUID.test(t)) {
      const h = digest(`${t}#${copy}`).toString('hex');
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
    }
    const u = t.indexOf('_');
    return u > 0 && !/^[0-9a-f]+$/i.test(t) ? t.slice(0, u + 1) + sameShape(t.slice(u + 1), copy) : sameShape(t, copy);
  }

  str(s: string, copy: number, shift: number): string {
    if (copy === 0 || this.keep.has(s)) return s;
    if (ISO.test(s)) {
      const t = Date.parse(s);
      return Number.isFinite(t) ? new Date(t + shift).toISOString() : s;
    }
    return s
      .replace(PLATE_INDEX, (_, d: string) => `plate-${String(Number(d) + copy * this.sample).padStart(6, '0')}`)
      .replace(ID_TOKEN, (t) => this.token(t, copy));
  }

  value(v: unknown, copy: number, shift: number): unknown {
    if (typeof v === 'string') return this.str(v, copy, shift);
    if (typeof v === 'number') return copy > 0 && v > 1.5e12 && v < 2.5e12 ? v + shift : v;
    if (Array.isArray(v)) return v.map((x) => this.value(x, copy, shift));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[this.str(k, copy, shift)] = this.value(x, copy, shift);
      return out;
    }
    return v;
  }

  /**
   * The record as copy `copy` would have it, or null when it carries nothing per file (e.g. a
   * journal's meta record): such a record exists once, not once per file.
   */
  record(rec: unknown, copy: number, shift: number): unknown {
    if (copy === 0) return rec;
    const out = this.value(rec, copy, shift) as Record<string, unknown>;
    if (JSON.stringify(out) === JSON.stringify(rec)) return null;
    // A journal key that held nothing to move must still be unique per copy.
    if (out && typeof out === 'object' && typeof (rec as Record<string, unknown>).k === 'string' && out.k === (rec as Record<string, unknown>).k) out.k = `${out.k}#${copy}`;
    return out;
  }
}

function shiftedName(file: string, shift: number): string {
  const base = path.basename(file);
  const m = DATE_IN_NAME.exec(base);
  if (!m || shift === 0) return file;
  const d = new Date(Date.parse(`${m[1]}T12:00:00Z`) + shift).toISOString().slice(0, 10);
  return path.join(path.dirname(file), base.replace(m[1], d));
}

/** Rewrites `src` (the sample's labwire-state) into `dst` as after `files` finished files. */
function scaleState(src: string, dst: string, sample: number, files: number, keep: Set<string>): StateFileFigures[] {
  const scaler = new Scaler(sample, keep);
  const copies = Math.ceil(files / sample);
  const lastFraction = files / sample - (copies - 1);
  fs.rmSync(dst, { recursive: true, force: true });
  fs.mkdirSync(dst, { recursive: true });
  const figures = new Map<string, StateFileFigures>();
  const figureKey = (rel: string) => rel.replace(DATE_IN_NAME, 'YYYY-MM-DD');
  const fig = (rel: string) => {
    const k = figureKey(rel);
    let f = figures.get(k);
    if (!f) figures.set(k, (f = { file: k, sampleBytes: 0, sampleRecords: 0, scaledBytes: 0, scaledRecords: 0, bytesPerFile: 0, recordsPerFile: 0, loadedAtStart: '' }));
    return f;
  };
  for (const file of walk(src)) {
    const rel = path.relative(src, file);
    const f = fig(rel);
    const text = fs.readFileSync(file, 'utf8');
    f.sampleBytes += Buffer.byteLength(text);
    if (!file.endsWith('.jsonl')) {
      // Not JSON lines: copied as it is (reported, so it shows if something else appears).
      fs.mkdirSync(path.dirname(path.join(dst, rel)), { recursive: true });
      fs.copyFileSync(file, path.join(dst, rel));
      f.scaledBytes += fs.statSync(file).size;
      continue;
    }
    const lines = text.split('\n').filter(Boolean);
    const recs = lines.map((l) => {
      try {
        return JSON.parse(l) as unknown;
      } catch {
        return undefined; // torn line: dropped, as the loaders do
      }
    });
    f.sampleRecords += lines.length;
    // A file of journal records ({k, v} / {k, d: 1}, nodes/lib/journal.ts) is not only appended to:
    // the Journal rewrites it with only the live records whenever it holds more than twice the live
    // ones plus 1000 (its default compactSlack). Replay that, so the file is what the code leaves.
    const isJournal = recs.length > 0 && recs.every((r) => !!r && typeof (r as { k?: unknown }).k === 'string');
    if (isJournal) {
      const liveRecs = new Map<string, string>();
      let onDisk: string[] = [];
      let appended = 0;
      for (let c = 0; c < copies; c++) {
        const shift = scaler.shiftMs(c, copies);
        const n = c === copies - 1 ? Math.round(lines.length * lastFraction) : lines.length;
        for (let i = 0; i < n; i++) {
          const r = scaler.record(recs[i], c, shift) as { k: string; v?: unknown; d?: 1 } | null;
          if (r === null) continue;
          if (r.d) liveRecs.delete(r.k);
          else liveRecs.set(r.k, JSON.stringify({ k: r.k, v: r.v }));
          onDisk.push(JSON.stringify(r));
          appended++;
          if (onDisk.length > 2 * liveRecs.size + 1000) onDisk = [...liveRecs.values()];
        }
      }
      const name = path.join(dst, rel);
      fs.mkdirSync(path.dirname(name), { recursive: true });
      const fd = fs.openSync(name, 'w');
      for (let i = 0; i < onDisk.length; i += 10_000) fs.writeSync(fd, onDisk.slice(i, i + 10_000).join('\n') + '\n');
      fs.closeSync(fd);
      f.scaledRecords += onDisk.length;
      f.appendedRecords = (f.appendedRecords ?? 0) + appended;
      continue;
    }
    const outs = new Map<string, { fd: number; buf: string[]; len: number }>();
    const out = (name: string) => {
      let o = outs.get(name);
      if (!o) {
        fs.mkdirSync(path.dirname(name), { recursive: true });
        outs.set(name, (o = { fd: fs.openSync(name, 'a'), buf: [], len: 0 }));
      }
      return o;
    };
    for (let c = 0; c < copies; c++) {
      const shift = scaler.shiftMs(c, copies);
      const o = out(shiftedName(path.join(dst, rel), shift));
      const n = c === copies - 1 ? Math.round(lines.length * lastFraction) : lines.length;
      for (let i = 0; i < n; i++) {
        const r = recs[i];
        const scaled = r === undefined ? (c === 0 ? lines[i] : null) : scaler.record(r, c, shift);
        if (scaled === null) continue;
        const line = typeof scaled === 'string' ? scaled : JSON.stringify(scaled);
        o.buf.push(line, '\n');
        o.len += line.length + 1;
        f.scaledRecords++;
        if (o.len > 1 << 20) {
          fs.writeSync(o.fd, o.buf.join(''));
          o.buf = [];
          o.len = 0;
        }
      }
    }
    for (const o of outs.values()) {
      if (o.buf.length) fs.writeSync(o.fd, o.buf.join(''));
      fs.closeSync(o.fd);
    }
  }
  // Sizes on disk after scaling (byte length of what was written).
  for (const file of walk(dst)) {
    const f = figures.get(figureKey(path.relative(dst, file)))!;
    if (file.endsWith('.jsonl')) f.scaledBytes += fs.statSync(file).size;
  }
  for (const f of figures.values()) {
    f.bytesPerFile = Math.round(f.scaledBytes / files);
    f.recordsPerFile = Number((f.scaledRecords / files).toFixed(2));
    f.loadedAtStart = f.file.split(path.sep).includes('history') ? 'no (read on demand)' : 'yes (Journal replay)';
  }
  return [...figures.values()].sort((a, b) => b.scaledBytes - a.scaledBytes);
}

// ---------------------------------------------------------------------------------------------
// 2b. attribution: each file Node-RED replays at start, opened alone with the pack's Journal

const JOURNAL_LOAD = `'use strict';
const fs = require('fs');
const { Journal } = require(process.env.JOURNAL_JS);
global.gc();
const m0 = process.memoryUsage();
const t0 = process.hrtime.bigint();
const j = Journal.open(process.env.JOURNAL_FILE);
const openMs = Number(process.hrtime.bigint() - t0) / 1e6;
global.gc();
const m1 = process.memoryUsage();
console.log(JSON.stringify({ openMs, liveEntries: j.size, heapMB: (m1.heapUsed - m0.heapUsed) / 1e6, rssMB: (m1.rss - m0.rss) / 1e6, bytesAfterCompact: fs.statSync(process.env.JOURNAL_FILE).size }));
j.close();
`;

async function journalLoad(file: string, scratch: string): Promise<JournalLoad> {
  fs.rmSync(scratch, { recursive: true, force: true });
  fs.mkdirSync(scratch, { recursive: true });
  const copy = path.join(scratch, path.basename(file));
  fs.copyFileSync(file, copy);
  const child = spawn(process.execPath, ['--expose-gc', '-e', JOURNAL_LOAD], {
    env: { ...process.env, JOURNAL_JS: path.resolve(__dirname, '..', 'nodes', 'lib', 'journal.js'), JOURNAL_FILE: copy },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  live.add(child);
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  const code = await new Promise<number>((r) => child.on('exit', (c) => r(c ?? -1)));
  live.delete(child);
  fs.rmSync(scratch, { recursive: true, force: true });
  if (code !== 0) throw new Error(`Journal.open(${path.basename(file)}) exited with ${code}`);
  return { file: path.basename(file), ...(JSON.parse(out) as Omit<JournalLoad, 'file'>) };
}

// ---------------------------------------------------------------------------------------------
// 3. measure start-up and memory

const PRELOAD = `'use strict';
// Bench helper (bench/history.ts): on SIGWINCH, collect garbage and write memoryUsage() to a file.
process.on('SIGWINCH', () => {
  try { if (global.gc) { global.gc(); global.gc(); } } catch (e) {}
  require('fs').writeFileSync(process.env.LABWIRE_BENCH_MEM_FILE, JSON.stringify(process.memoryUsage()));
});
`;

async function startOnce(o: { userDir: string; url: string; env: Record<string, string>; preload: string; memFile: string; settleMs: number }): Promise<StartMeasure> {
  fs.rmSync(o.memFile, { force: true });
  const redJs = require.resolve('node-red/red.js');
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--expose-gc', '-r', o.preload, redJs, '--userDir', o.userDir, '--settings', path.join(o.userDir, 'settings.js')], {
    env: { ...process.env, ...o.env, LABWIRE_BENCH_MEM_FILE: o.memFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? -1));
  let startedAt: number | null = null;
  const lines: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    let buf = '';
    stream.on('data', (chunk) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (startedAt === null && line.includes('Started flows')) startedAt = performance.now();
        lines.push(line);
      }
    });
  }
  try {
    let flowsAt: number | null = null;
    const deadline = Date.now() + 180_000;
    while (flowsAt === null || startedAt === null) {
      if (exited !== null) throw new Error(`Node-RED exited (${exited}) during start-up:\n${lines.slice(-20).join('\n')}`);
      if (Date.now() > deadline) throw new Error(`Node-RED not started within 180 s:\n${lines.slice(-20).join('\n')}`);
      if (flowsAt === null && (await httpStatus(`${o.url}/flows`, 2000)) === 200) flowsAt = performance.now();
      else await sleep(20);
    }
    const started: number = startedAt;
    await sleep(Math.max(0, started + o.settleMs - performance.now()));
    // The operator's file list counts the whole history in the background after start; its first
    // answer waits for that count, so the RSS below includes it (as soon as someone opens the view).
    const listed = await httpJson(`${o.url}/labwire/files?limit=1`, 60_000);
    const counts = (listed.body as { counts?: Record<string, number> } | null)?.counts;
    if (listed.status !== 200 || !counts) throw new Error(`GET /labwire/files answered ${listed.status}: ${JSON.stringify(listed.body).slice(0, 300)}`);
    const rss = procStatusKiB(child.pid!, 'VmRSS');
    child.kill('SIGWINCH');
    const gcDeadline = Date.now() + 10_000;
    while (!fs.existsSync(o.memFile)) {
      if (Date.now() > gcDeadline) throw new Error('no answer to SIGWINCH (forced GC)');
      await sleep(50);
    }
    await sleep(300);
    const mem = JSON.parse(fs.readFileSync(o.memFile, 'utf8')) as NodeJS.MemoryUsage;
    const rssAfterGc = procStatusKiB(child.pid!, 'VmRSS');
    const hwm = procStatusKiB(child.pid!, 'VmHWM');
    const errors = lines.filter((l) => l.includes('[error]'));
    if (errors.length) console.warn(`  (Node-RED logged errors on start: ${errors.slice(0, 3).join(' | ')})`);
    return {
      startedFlowsS: (started - t0) / 1000,
      getFlowsS: (flowsAt - t0) / 1000,
      rssMB: (rss * 1024) / MB,
      rssAfterGcMB: (rssAfterGc * 1024) / MB,
      heapUsedAfterGcMB: mem.heapUsed / MB,
      peakRssMB: (hwm * 1024) / MB,
      historyCounted: (counts.done ?? 0) + (counts.failed ?? 0),
    };
  } finally {
    await new Promise<void>((resolve) => {
      if (exited !== null) return resolve();
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGINT');
    });
    live.delete(child);
  }
}

function restoreState(from: string | null, to: string): void {
  fs.rmSync(to, { recursive: true, force: true });
  if (from) fs.cpSync(from, to, { recursive: true });
  else fs.mkdirSync(to, { recursive: true });
}

// ---------------------------------------------------------------------------------------------

export async function benchHistory(o: HistoryBenchOptions = {}): Promise<HistoryBenchResult> {
  const files = o.files ?? 100_000;
  const sample = Math.min(o.sample ?? 250, files);
  const repeats = o.repeats ?? 5;
  const settleMs = o.settleMs ?? 3000;
  const log = o.log ?? ((s: string) => console.log(s));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'labwire-bench-history-'));
  const instrument = path.join(root, 'instrument');
  const archive = path.join(root, 'archive');
  const subject = path.join(root, 'subject');
  const baseline = path.join(root, 'baseline');
  const sampleState = path.join(root, 'sample-state');
  const scaledState = path.join(root, 'scaled-state');
  fs.mkdirSync(instrument);
  const onSignal = () => {
    killAll();
    if (!o.keep) fs.rmSync(root, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let sim: LabSimulator | undefined;
  try {
    sim = await startLabSimulator({ benchling: { rateLimit: false, taskDurationMs: 300 } });
    const port = await freePort();
    const env = {
      ...resultsLoopEnv(sim.benchling.url, { instrument: instrument, archive: archive }),
    };

    log(`  1. producing the real state: ${sample} files through example 01 in node-red (simulator, rate limit off)`);
    await produce({ sample, userDir: subject, instrument, archive, port, env, sim, log });
    fs.renameSync(path.join(subject, 'labwire-state'), sampleState);

    log(`  2. scaling labwire-state from ${sample} to ${files} finished files (×${(files / sample).toFixed(2)})`);
    const keep = new Set<string>([...(exampleFlow() as Array<{ id: string }>).map((n) => n.id), ...Object.values(env)]);
    const t1 = Date.now();
    const stateFiles = scaleState(sampleState, scaledState, sample, files, keep);
    const dayFiles = walk(path.join(scaledState, 'history')).length;
    log(`     scaled in ${((Date.now() - t1) / 1000).toFixed(1)} s; ${dayFiles} history day file(s)`);
    const w = (s: string | number, n: number) => String(s).padStart(n);
    log(`     ${'file'.padEnd(58)} ${w('sample B', 10)} ${w('recs', 6)} ${w('scaled MB', 10)} ${w('recs', 8)} ${w('B/file', 7)} ${w('recs/file', 9)}  loaded at start`);
    for (const f of stateFiles) {
      const compacted = f.appendedRecords !== undefined && f.appendedRecords !== f.scaledRecords ? ` (journal compacted: ${f.appendedRecords} appended)` : '';
      log(`     ${f.file.padEnd(58)} ${w(f.sampleBytes, 10)} ${w(f.sampleRecords, 6)} ${w((f.scaledBytes / MB).toFixed(1), 10)} ${w(f.scaledRecords, 8)} ${w(f.bytesPerFile, 7)} ${w(f.recordsPerFile, 9)}  ${f.loadedAtStart}${compacted}`);
    }
    const stateBytes = stateFiles.reduce((n, f) => n + f.scaledBytes, 0);
    const loadedBytes = stateFiles.filter((f) => f.loadedAtStart.startsWith('yes')).reduce((n, f) => n + f.scaledBytes, 0);
    log(`     total ${(stateBytes / MB).toFixed(1)} MB = ${Math.round(stateBytes / files)} B per finished file; loaded at start: ${(loadedBytes / MB).toFixed(1)} MB = ${Math.round(loadedBytes / files)} B per file`);

    // Which file costs what: every JSON-lines file Node-RED replays at start (the top level of
    // labwire-state/; the history's day files are read on demand), opened alone.
    const journalLoads: JournalLoad[] = [];
    for (const f of fs.readdirSync(scaledState).filter((n) => n.endsWith('.jsonl')).sort()) {
      journalLoads.push(await journalLoad(path.join(scaledState, f), path.join(root, 'journal-load')));
    }
    log(`     each journal opened alone (Journal.open, fresh process, after GC):`);
    for (const j of journalLoads) {
      log(`     ${j.file.padEnd(58)} open ${(j.openMs / 1000).toFixed(2)} s, ${String(j.liveEntries).padStart(7)} live, heap +${j.heapMB.toFixed(1)} MB, RSS +${j.rssMB.toFixed(1)} MB, ${(j.bytesAfterCompact / MB).toFixed(1)} MB after compaction`);
    }

    // Baseline: the same user directory (flows, credentials, settings, the pack link), no state.
    fs.cpSync(subject, baseline, { recursive: true, verbatimSymlinks: true });
    restoreState(null, path.join(baseline, 'labwire-state'));
    const preload = path.join(root, 'gc-on-sigwinch.js');
    fs.writeFileSync(preload, PRELOAD);
    const url = `http://127.0.0.1:${port}`;

    log(`  3. ${repeats} starts each, alternating; RSS ${settleMs} ms after "Started flows", then after a forced GC`);
    const runs: HistoryBenchResult['runs'] = [];
    for (let r = 0; r < repeats; r++) {
      const order: Array<'baseline' | 'subject'> = r % 2 ? ['subject', 'baseline'] : ['baseline', 'subject'];
      for (const which of order) {
        const userDir = which === 'baseline' ? baseline : subject;
        // Journals compact on open and the history is pruned: every start sees the same state.
        restoreState(which === 'baseline' ? null : scaledState, path.join(userDir, 'labwire-state'));
        const m = await startOnce({ userDir, url, env, preload, memFile: path.join(root, `mem-${which}.json`), settleMs });
        runs.push({ which, ...m });
        if (which === 'subject' && m.historyCounted < files) throw new Error(`the operator's list counted ${m.historyCounted} finished files, not ${files}: the history was not all counted`);
        log(`     ${String(r + 1).padStart(2)} ${which.padEnd(8)} Started flows ${m.startedFlowsS.toFixed(2)} s, GET /flows ${m.getFlowsS.toFixed(2)} s, ${m.historyCounted} files counted, RSS ${m.rssMB.toFixed(1)} MB, after GC ${m.rssAfterGcMB.toFixed(1)} MB (heap ${m.heapUsedAfterGcMB.toFixed(1)} MB), peak ${m.peakRssMB.toFixed(1)} MB`);
      }
    }
    const keys: Array<keyof StartMeasure> = ['startedFlowsS', 'getFlowsS', 'rssMB', 'rssAfterGcMB', 'heapUsedAfterGcMB', 'peakRssMB'];
    const agg = (which: string) => Object.fromEntries(keys.map((k) => [k, stats(runs.filter((x) => x.which === which).map((x) => x[k]))])) as Record<keyof StartMeasure, Stats>;
    const b = agg('baseline');
    const s = agg('subject');
    const diff = Object.fromEntries(keys.map((k) => [k, s[k].median - b[k].median])) as Record<keyof StartMeasure, number>;
    return {
      files,
      sample,
      repeats,
      stateFiles,
      stateBytes,
      stateBytesPerFile: Math.round(stateBytes / files),
      journalLoads,
      baseline: b,
      subject: s,
      diff,
      runs,
      startupPass: diff.startedFlowsS <= 0.5,
      rssPass: diff.rssMB <= 30,
    };
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    killAll();
    await sim?.close();
    if (o.keep) log(`  (kept ${root})`);
    else fs.rmSync(root, { recursive: true, force: true });
  }
}

export function printHistoryResult(r: HistoryBenchResult, log: (s: string) => void = console.log): void {
  const row = (label: string, k: keyof StartMeasure, unit: string, digits: number) => {
    const f = (x: Stats) => `${x.median.toFixed(digits)} (${x.min.toFixed(digits)}–${x.max.toFixed(digits)})`;
    const d = r.diff[k];
    log(`  ${label.padEnd(26)} ${f(r.baseline[k]).padStart(24)} ${f(r.subject[k]).padStart(24)} ${((d >= 0 ? '+' : '') + d.toFixed(digits) + ' ' + unit).padStart(12)}`);
  };
  log(`  ${'median (min–max)'.padEnd(26)} ${'baseline (empty)'.padStart(24)} ${`subject (${r.files})`.padStart(24)} ${'diff'.padStart(12)}`);
  row('start-up: Started flows s', 'startedFlowsS', 's', 2);
  row('start-up: GET /flows s', 'getFlowsS', 's', 2);
  row('RSS settled MB', 'rssMB', 'MB', 1);
  row('RSS after GC MB', 'rssAfterGcMB', 'MB', 1);
  row('heap used after GC MB', 'heapUsedAfterGcMB', 'MB', 1);
  row('peak RSS (VmHWM) MB', 'peakRssMB', 'MB', 1);
  log(`${r.startupPass ? 'PASS' : 'MISS'} history: start-up with ${r.files} finished files − empty = ${r.diff.startedFlowsS.toFixed(2)} s (Started flows, median; target ≤ 0.5 s)`);
  log(`${r.rssPass ? 'PASS' : 'MISS'} history: RSS with ${r.files} finished files − empty = ${r.diff.rssMB.toFixed(1)} MB (settled, median; target ≤ 30 MB)`);
}

if (require.main === module) {
  const files = Number(process.argv[2] ?? process.env.BENCH_HISTORY_FILES) || undefined;
  const repeats = Number(process.argv[3] ?? process.env.BENCH_HISTORY_REPEATS) || undefined;
  benchHistory({ files, repeats, sample: Number(process.env.BENCH_HISTORY_SAMPLE) || undefined, keep: !!process.env.BENCH_HISTORY_KEEP }).then(
    (r) => {
      console.log('');
      printHistoryResult(r);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
