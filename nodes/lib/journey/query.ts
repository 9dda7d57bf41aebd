/**
 * The operator's view of the files: one list across every registered watcher — files waiting in
 * the stability gate, live journeys (on their way, retrying, dead-lettered) and finished ones from
 * the history — newest first, paged with an opaque cursor, filtered by state and a search text,
 * with counts by state. The admin API (nodes/labwire-admin.ts) serves it; docs/operator-api.md
 * describes the JSON.
 *
 * Order: the files still in a watcher's care (waiting, in progress, retrying, failed and not gone)
 * come first, newest first by when they were first seen; then the finished ones from the history,
 * newest first by when they finished, merged across watchers. A page position is, for the live
 * part, the last file returned (time, id) and, for the history, one (day, byte offset) per watcher
 * (history-index.ts), so a page costs the same however long the history is.
 */
import { badInput, LabError } from '../http/errors';
import type { JourneyHistory } from './history';
import { HistoryIndex, historyIndex, HistoryLine, HistoryPos } from './history-index';
import type { JourneyRecord } from './journey';

export const VIEW_STATES = ['waiting', 'in-progress', 'retrying', 'done', 'failed'] as const;
export type ViewState = (typeof VIEW_STATES)[number];
export type StateCounts = Record<ViewState, number>;

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;
export const MAX_Q = 200;
/** A journey id as the watcher makes them (16 hex digits); a little looser, never a path. */
export const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** A history record: the journey as it ended, with where the file was. */
export type HistoryRecord = JourneyRecord & { relativePath: string; path: string; folder: string; gone?: number };

export interface PendingFile {
  id: string;
  name: string;
  path: string;
  relativePath: string;
  size: number;
  mtimeMs: number;
  seenAt: number;
}

/** What the view needs of a watcher (FolderWatcher has it all). */
export interface OperatorWatcher {
  readonly folder: string;
  journeys(): Iterable<[string, JourneyRecord]>;
  pendingFiles(): PendingFile[];
  historyStore(): JourneyHistory<HistoryRecord> | null;
}

/** A watcher as the view names it: its node's id and name. */
export interface WatcherSource {
  id: string;
  name: string;
  watcher: OperatorWatcher;
}

export function isOperatorWatcher(w: unknown): w is OperatorWatcher {
  const o = w as Partial<OperatorWatcher> | null;
  return !!o && typeof o.journeys === 'function' && typeof o.pendingFiles === 'function' && typeof o.historyStore === 'function';
}

export interface FileView {
  id: string;
  name: string;
  path: string;
  relativePath: string;
  state: ViewState;
  watcher: { id: string; name: string };
  attempts: number;
  size?: number;
  stages: { seen?: string; stable?: string; uploaded?: string; processorCreated?: string; taskFinished?: string; done?: string };
  blobId?: string;
  processorId?: string;
  taskId?: string;
  taskStatus?: string;
  assayRunId?: string;
  entryId?: string;
  failure?: {
    code: string;
    status?: number;
    message: string;
    node?: { id?: string; type?: string; name?: string };
    errorFile?: { id?: string; name?: string; downloadURL?: string };
    at?: string;
  };
  nextAttemptAt?: string;
  skipped?: { by: string; at: string };
  archivedTo?: string;
  failedTo?: string;
  /** A history record of a journey that ended without done: when its file went away. */
  goneAt?: string;
}

export interface FileQuery {
  limit: number;
  cursor: Cursor | null;
  state?: ViewState;
  q?: string;
}

export interface FileList {
  files: FileView[];
  counts: StateCounts;
  nextCursor: string | null;
}

/** `l`: after this live file (time, id). `h`: history positions by watcher id ([day, end], or 0 when done). */
interface Cursor {
  v: 1;
  l?: [number, string];
  h?: Record<string, [string, number] | 0>;
}

// ------------------------------------------------------------------ states and views

/** The view state of a live journey. */
export function liveState(state: JourneyRecord['state']): ViewState {
  switch (state) {
    case 'emitted':
    case 'acked':
      return 'in-progress';
    case 'retrying':
      return 'retrying';
    case 'failed':
      return 'failed';
    default:
      return 'done';
  }
}

/** The view state of a finished journey: done, or failed (it ended without done). */
export function historyState(rec: Pick<JourneyRecord, 'state'>): ViewState {
  return rec.state === 'done' ? 'done' : 'failed';
}

function iso(ms: number | undefined): string | undefined {
  return typeof ms === 'number' && Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

function clean<T extends object>(o: T): T {
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] === undefined) delete o[k];
  return o;
}

/** The view of a journey record (live or from the history). */
export function fileView(src: { id: string; name: string }, rel: string, fullPath: string, rec: JourneyRecord, state: ViewState): FileView {
  const s = rec.steps ?? {};
  const f = rec.failure;
  const view: FileView = {
    id: rec.id,
    name: rel.slice(rel.lastIndexOf('/') + 1),
    path: fullPath,
    relativePath: rel,
    state,
    watcher: { id: src.id, name: src.name },
    attempts: rec.emitCount ?? 0,
    size: rec.size,
    stages: clean({
      seen: iso(rec.seenAt ?? rec.firstSentAt),
      stable: iso(rec.firstSentAt),
      uploaded: iso(s.uploadedAt),
      processorCreated: iso(s.processorCreatedAt),
      taskFinished: iso(s.taskFinishedAt),
      done: iso(rec.state === 'done' ? rec.doneAt : undefined),
    }),
    blobId: s.blobId,
    processorId: s.processorId,
    taskId: s.taskId,
    taskStatus: s.taskStatus,
    assayRunId: s.assayRunId,
    entryId: s.entryId,
    failure:
      f && (state === 'failed' || state === 'retrying')
        ? clean({ code: f.code, status: f.status, message: f.message, node: f.node && clean({ ...f.node }), errorFile: f.errorFile && clean({ ...f.errorFile }), at: iso(f.at) })
        : !f && rec.error && (state === 'failed' || state === 'retrying')
          ? { code: 'FAILED', message: rec.error }
          : undefined,
    nextAttemptAt: state === 'retrying' ? iso(rec.nextAttemptAt) : undefined,
    skipped: rec.skipped ? { by: rec.skipped.by, at: iso(rec.skipped.at) ?? '' } : undefined,
    archivedTo: rec.archivedTo,
    failedTo: rec.failedTo,
    goneAt: iso((rec as HistoryRecord).gone),
  };
  return clean(view);
}

function pendingView(src: { id: string; name: string }, p: PendingFile): FileView {
  return { id: p.id, name: p.name, path: p.path, relativePath: p.relativePath, state: 'waiting', watcher: { id: src.id, name: src.name }, attempts: 0, size: p.size, stages: { seen: iso(p.seenAt) } };
}

// ------------------------------------------------------------------ query parsing

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

function decodeCursor(text: string): Cursor {
  const bad = (): LabError => badInput('operator.badCursor');
  if (text.length > 8192 || !/^[A-Za-z0-9_-]+$/.test(text)) throw bad();
  let c: unknown;
  try {
    c = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!c || typeof c !== 'object' || Array.isArray(c) || (c as Cursor).v !== 1) throw bad();
  const { l, h } = c as Cursor;
  if (l !== undefined && !(Array.isArray(l) && l.length === 2 && Number.isFinite(l[0]) && typeof l[1] === 'string' && ID_RE.test(l[1]))) throw bad();
  if (h !== undefined) {
    if (!h || typeof h !== 'object' || Array.isArray(h)) throw bad();
    for (const [k, v] of Object.entries(h)) {
      if (!ID_RE.test(k)) throw bad();
      if (v === 0) continue;
      if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string' || !DAY_RE.test(v[0]) || !Number.isSafeInteger(v[1]) || v[1] < 0) throw bad();
    }
  }
  if ((l === undefined) === (h === undefined)) throw bad();
  return { v: 1, l, h };
}

/** The query from the request's query string; a BAD_INPUT LabError for an unusable value. */
export function parseFileQuery(raw: Record<string, unknown>): FileQuery {
  const one = (name: string): string | undefined => {
    const v = raw[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw badInput('operator.repeated', { name });
    return v;
  };
  const limitText = one('limit');
  let limit = DEFAULT_LIMIT;
  if (limitText !== undefined) {
    if (!/^\d{1,4}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > MAX_LIMIT) {
      throw badInput('operator.badLimit', { max: MAX_LIMIT, value: limitText.slice(0, 20) });
    }
    limit = Number(limitText);
  }
  const stateText = one('state');
  if (stateText !== undefined && stateText !== '' && !(VIEW_STATES as readonly string[]).includes(stateText)) {
    throw badInput('operator.badState', { states: VIEW_STATES.join(', '), value: stateText.slice(0, 20) });
  }
  const q = one('q');
  if (q !== undefined && q.length > MAX_Q) throw badInput('operator.badSearch', { max: MAX_Q });
  const cursorText = one('cursor');
  return {
    limit,
    cursor: cursorText ? decodeCursor(cursorText) : null,
    state: stateText ? (stateText as ViewState) : undefined,
    q: q ? q.toLowerCase() : undefined,
  };
}

// ------------------------------------------------------------------ listing

function matches(v: FileView, q: string | undefined): boolean {
  if (!q) return true;
  for (const s of [v.name, v.path, v.relativePath, v.assayRunId, v.blobId, v.processorId, v.id]) if (s && s.toLowerCase().includes(q)) return true;
  return false;
}

/** A raw JSON line may hold the search text only if it contains it verbatim (JSON leaves such text as it is). */
function rawMayMatch(raw: string, q: string | undefined): boolean {
  if (!q || /["\\\u0000-\u001f]/.test(q)) return true;
  return raw.toLowerCase().includes(q);
}

interface LiveItem {
  t: number;
  view: FileView;
}

function liveItems(sources: WatcherSource[], stateFilter: ViewState | undefined, q: string | undefined, counts: StateCounts): LiveItem[] {
  const out: LiveItem[] = [];
  for (const src of sources) {
    const w = src.watcher;
    const hasHistory = !!w.historyStore();
    for (const p of w.pendingFiles()) {
      counts.waiting++;
      if (stateFilter && stateFilter !== 'waiting') continue;
      const view = pendingView(src, p);
      if (matches(view, q)) out.push({ t: p.seenAt, view });
    }
    for (const [rel, rec] of w.journeys()) {
      const state = liveState(rec.state);
      // A done journey is in the history already (its file is still in the folder).
      if (state === 'done' && hasHistory) continue;
      counts[state]++;
      if (stateFilter && stateFilter !== state) continue;
      const view = fileView(src, rel, joinPath(w.folder, rel), rec, state);
      if (matches(view, q)) out.push({ t: rec.seenAt ?? rec.firstSentAt ?? rec.emittedAt ?? 0, view });
    }
  }
  return out.sort((a, b) => b.t - a.t || (a.view.id < b.view.id ? -1 : a.view.id > b.view.id ? 1 : 0));
}

function joinPath(folder: string, rel: string): string {
  const sep = folder.includes('\\') && !folder.includes('/') ? '\\' : '/';
  return folder.replace(/[\\/]+$/, '') + sep + rel.split('/').join(sep);
}

/** Live item `a` comes after the cursor's position `[t, id]` in the listing's order. */
function afterPos(a: LiveItem, pos: [number, string]): boolean {
  return a.t < pos[0] || (a.t === pos[0] && a.view.id > pos[1]);
}

interface HistoryReader {
  src: WatcherSource;
  lines: IterableIterator<HistoryLine> | null;
  head: { line: HistoryLine; rec: HistoryRecord; t: number } | null;
}

function recTime(r: HistoryRecord): number {
  return r.doneAt ?? r.gone ?? r.ackedAt ?? r.emittedAt ?? 0;
}

/** The next history record of a reader that passes the filters (raw text checked before parsing). */
function advance(r: HistoryReader, stateFilter: ViewState | undefined, q: string | undefined): void {
  r.head = null;
  if (!r.lines) return;
  for (;;) {
    const n = r.lines.next();
    if (n.done) {
      r.lines = null;
      return;
    }
    const line = n.value;
    if (stateFilter === 'done' && !line.raw.includes('"state":"done"')) continue;
    if (stateFilter === 'failed' && line.raw.includes('"state":"done"')) continue;
    if (!rawMayMatch(line.raw, q)) continue;
    let rec: HistoryRecord;
    try {
      rec = JSON.parse(line.raw) as HistoryRecord;
    } catch {
      continue; // torn by a crash mid-write
    }
    if (!rec || typeof rec.id !== 'string' || typeof rec.relativePath !== 'string') continue;
    if (stateFilter && historyState(rec) !== stateFilter) continue;
    if (q && !matches(fileView(r.src, rec.relativePath, rec.path, rec, historyState(rec)), q)) continue;
    r.head = { line, rec, t: recTime(rec) };
    return;
  }
}

function indexOf(w: OperatorWatcher): HistoryIndex | null {
  const h = w.historyStore();
  return h ? historyIndex(h as JourneyHistory<object>) : null;
}

/** Starts counting every watcher's history in the background (the first listing waits for it). */
export function warmUp(sources: WatcherSource[]): void {
  for (const s of sources) void indexOf(s.watcher)?.ready();
}

/** Counts by state over everything (not filtered). Waits for the histories' first count. */
export async function countFiles(sources: WatcherSource[]): Promise<StateCounts> {
  const counts: StateCounts = { waiting: 0, 'in-progress': 0, retrying: 0, done: 0, failed: 0 };
  liveItems(sources, 'waiting', '\u0000never', counts); // counts only: nothing passes the filter
  await addHistoryCounts(sources, counts);
  return counts;
}

async function addHistoryCounts(sources: WatcherSource[], counts: StateCounts): Promise<void> {
  for (const s of sources) {
    const ix = indexOf(s.watcher);
    if (!ix) continue;
    if (!ix.isReady) await ix.ready();
    const c = ix.counts();
    counts.done += c.done;
    counts.failed += c.failed;
  }
}

/** One page of the operator's list. */
export async function listFiles(sources: WatcherSource[], query: FileQuery): Promise<FileList> {
  const counts: StateCounts = { waiting: 0, 'in-progress': 0, retrying: 0, done: 0, failed: 0 };
  const { limit, state, q } = query;
  const cursor = query.cursor;
  const files: FileView[] = [];
  let nextCursor: Cursor | null = null;

  const live = liveItems(sources, state, q, counts);
  const countsDone = addHistoryCounts(sources, counts);

  if (!cursor || cursor.l) {
    const rest = cursor?.l ? live.filter((a) => afterPos(a, cursor.l as [number, string])) : live;
    for (const a of rest) {
      if (files.length === limit) {
        const last = files[files.length - 1];
        const lastItem = rest[files.length - 1];
        nextCursor = { v: 1, l: [lastItem.t, last.id] };
        break;
      }
      files.push(a.view);
    }
  }

  const historyWanted = !state || state === 'done' || state === 'failed';
  if (!nextCursor && historyWanted) {
    const readers: HistoryReader[] = [];
    for (const src of sources) {
      const ix = indexOf(src.watcher);
      if (!ix) continue;
      let pos: HistoryPos | null;
      if (cursor?.h) {
        const p = cursor.h[src.id];
        // A watcher the cursor does not name (deployed since): its history starts at the newest line.
        pos = p === 0 ? null : p ? { day: p[0], end: p[1] } : ix.newest();
      } else pos = ix.newest();
      const r: HistoryReader = { src, lines: pos ? ix.from(pos) : null, head: null };
      advance(r, state, q);
      readers.push(r);
    }
    const positions = (): Record<string, [string, number] | 0> => {
      const h: Record<string, [string, number] | 0> = {};
      for (const r of readers) h[r.src.id] = r.head ? [r.head.line.day, r.head.line.end] : 0;
      return h;
    };
    for (;;) {
      let best: HistoryReader | null = null;
      for (const r of readers) if (r.head && (!best || r.head.t > (best.head as { t: number }).t)) best = r;
      if (!best || !best.head) break;
      if (files.length === limit) {
        nextCursor = { v: 1, h: positions() };
        break;
      }
      const { rec } = best.head;
      files.push(fileView(best.src, rec.relativePath, rec.path, rec, historyState(rec)));
      advance(best, state, q);
    }
    for (const r of readers) r.lines?.return?.();
  }

  await countsDone;
  return { files, counts, nextCursor: nextCursor ? encodeCursor(nextCursor) : null };
}

// ------------------------------------------------------------------ finding one file

export interface FoundLive {
  src: WatcherSource;
  rel: string;
  record: JourneyRecord;
  view: FileView;
}

/** A file in a watcher's care by its id: a live journey, or a file waiting in the gate. */
export function findLive(sources: WatcherSource[], id: string): FoundLive | { src: WatcherSource; view: FileView; record?: undefined } | undefined {
  for (const src of sources) {
    const w = src.watcher;
    for (const [rel, rec] of w.journeys()) {
      if (rec.id === id) return { src, rel, record: rec, view: fileView(src, rel, joinPath(w.folder, rel), rec, liveState(rec.state)) };
    }
    for (const p of w.pendingFiles()) if (p.id === id) return { src, view: pendingView(src, p) };
  }
  return undefined;
}

/** A finished file by its id, from the histories (reads them newest first; for a 404 vs 409 answer). */
export async function findFinished(sources: WatcherSource[], id: string): Promise<FileView | undefined> {
  const needle = `"id":"${id}"`;
  for (const src of sources) {
    const ix = indexOf(src.watcher);
    const pos = ix?.newest();
    if (!ix || !pos) continue;
    let n = 0;
    for (const line of ix.from(pos)) {
      if (++n % 2000 === 0) await new Promise<void>((r) => setImmediate(r));
      if (!line.raw.includes(needle)) continue;
      try {
        const rec = JSON.parse(line.raw) as HistoryRecord;
        if (rec.id === id) return fileView(src, rec.relativePath, rec.path, rec, historyState(rec));
      } catch {
        /* torn */
      }
    }
  }
  return undefined;
}
