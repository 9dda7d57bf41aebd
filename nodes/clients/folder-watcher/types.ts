/**
 * The folder watcher's public shapes (options, the file it sends, references to it, ack results,
 * status) and the small helpers its parts share (ids, paths, bounded concurrency, error text,
 * numeric settings).
 */
import * as crypto from 'crypto';
import * as path from 'path';
import { badInput } from '../../lib/http/errors';
import type { RetryPolicy } from '../../lib/journey';
import type { LedgerEntry } from './ledger';

export type WatchMode = 'events' | 'poll' | 'auto';
export type PostAction = 'none' | 'move' | 'delete';

export interface FolderWatcherOptions {
  /** Absolute path of the folder to watch (local path or UNC `\\server\share\dir`). */
  folder: string;
  /** Comma-separated globs (or an array) a file must match; default `*` (everything). */
  include?: string | string[];
  /** Comma-separated globs (or an array) of files or folders to leave alone. */
  exclude?: string | string[];
  /** Watch sub-folders too (default false). */
  recursive?: boolean;
  /** `events` (fs events), `poll` (readdir+stat every `pollIntervalMs`) or `auto` (poll for UNC). */
  mode?: WatchMode;
  /** Poll interval in poll mode; default 15000 ms. */
  pollIntervalMs?: number;
  /** Size and mtime must hold still this long before a file is sent; default 5000 ms. */
  stabilityMs?: number;
  /** Safety-net rescan in events mode; default 60000 ms, 0 = off. */
  rescanIntervalMs?: number;
  /** How often the folder's existence is checked (missing / deleted / re-created); default 3000 ms. */
  folderProbeMs?: number;
  /** Ignore temp/lock/system files and dot-files (default true). */
  ignoreTempFiles?: boolean;
  /** Send zero-byte files once they held still for the window (default false: wait for content). */
  emitEmptyFiles?: boolean;
  /** What to do with a file once it is acknowledged (default `none`). */
  postAction?: PostAction;
  /** Absolute path of the archive folder for `postAction: 'move'`. */
  archiveFolder?: string;
  /** Journal file for the durable ledger; without one the ledger lives in memory only. */
  ledgerFile?: string;
  /** Parallel `stat` calls (default 32). */
  statConcurrency?: number;
  /** When a file whose attempt failed transiently is sent again (default 30 s doubling to 30 min, for 24 h). */
  retry?: Partial<RetryPolicy>;
  /** Absolute path of a folder dead-lettered files are moved to (default: they stay where they are). */
  failedFolder?: string;
  /** Folder for finished journeys (one file per day); without one, finished journeys are not kept. */
  historyDir?: string;
  /** How long finished journeys are kept (default 30 days). */
  retentionMs?: number;
}

/** What the watcher sends for each complete file. */
export interface WatchedFile {
  /** Identifies this version of the file (relative path + size + mtime); used to acknowledge it. */
  id: string;
  /** Full path. */
  path: string;
  /** Path relative to the watched folder, with `/` separators. */
  relativePath: string;
  /** File name. */
  name: string;
  size: number;
  mtimeMs: number;
  /** 1 on the first send; more when it is sent again (a retry, or after a restart without an ack). */
  deliveryCount: number;
  /** The attempt this send starts (1, 2, …): equal to deliveryCount; named for the journey. */
  attempt: number;
  /** Set after a person's retry of a FAILED processing: that processor's id, to be replaced. */
  reprocess?: string;
}

/** A reference to a sent file, as carried by `msg.labwireFile`: any of path / relativePath. */
export interface FileRef {
  path?: string;
  relativePath?: string;
  id?: string;
  /** The attempt the message belongs to (`msg.labwireFile.attempt`). */
  attempt?: number;
}

/** A journey in the history: the record as it ended, with where the file was. */
export type JourneyHistoryRecord = LedgerEntry & { relativePath: string; path: string; folder: string; gone?: number };

export interface AckResult {
  /**
   * `done`: acknowledged and post-processed. `retrying`: a transient failure; sent again after a
   * backoff (`nextAttemptAt`). `failed`: dead-lettered (permanent, or transient for too long).
   * `already-done`: an ack repeated. `stale`: the file changed since that message was sent;
   * nothing done to it. `unknown`: the ledger has no such file (never sent, or already pruned).
   */
  outcome: 'done' | 'retrying' | 'failed' | 'already-done' | 'stale' | 'unknown';
  /** `retrying`: when the file is sent again (Unix ms). */
  nextAttemptAt?: number;
  /** `failed`: where the file was moved (the failed folder), if it was. */
  failedTo?: string;
  relativePath: string;
  path: string;
  /** Where the file went, for `postAction: 'move'`. */
  archivedTo?: string;
  /** Why the post-action was skipped (the file changed or vanished after it was sent). */
  skipped?: string;
}

export type WatcherPhase = 'starting' | 'watching' | 'waiting' | 'error' | 'closed';

export interface WatcherStatus {
  phase: WatcherPhase;
  folder: string;
  mode: 'events' | 'poll';
  /** Files currently seen in the folder (after filtering). */
  files: number;
  /** Files waiting in the stability gate. */
  pending: number;
  /** Files sent and not acknowledged yet. */
  awaitingAck: number;
  /** Files sent since start. */
  emitted: number;
  /** Files acknowledged and post-processed since start. */
  done: number;
  /** Failures reported since start (each failed attempt counts). */
  failed: number;
  /** Files waiting for their next attempt after a transient failure. */
  retrying: number;
  /** Files dead-lettered (kept with their reason until someone retries or skips them). */
  deadLettered: number;
  /** Files found by a rescan that the events did not report. */
  recovered: number;
  errors: number;
  /** The last problem: a LabError (message id + values; English message) a node retells in its language. */
  lastProblem?: Error;
}

/** What started a scan: the first one, a rescan (timer, input, folder back) or a poll. */
export type ScanKind = 'initial' | 'rescan' | 'poll';

const UNC_RE = /^(\\\\|\/\/)[^\\/]+[\\/][^\\/]+/;

/** Whether a path names a network share (`\\server\share` or `//server/share`). */
export function isUncPath(p: string): boolean {
  return UNC_RE.test(p);
}

export function isAbsoluteAnywhere(p: string): boolean {
  return path.isAbsolute(p) || path.win32.isAbsolute(p);
}

/** A path relative to the watched folder, with `/` separators. */
export function relPath(folder: string, abs: string): string {
  const r = path.relative(folder, abs);
  return path.sep === '/' ? r : r.split(path.sep).join('/');
}

/** The full path of a relative (`/`-separated) path in the watched folder. */
export function fullPathOf(folder: string, rel: string): string {
  return path.join(folder, ...rel.split('/'));
}

export function fileId(rel: string, size: number, mtimeMs: number): string {
  return crypto.createHash('sha1').update(`${rel}\0${size}\0${mtimeMs}`).digest('hex').slice(0, 16);
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function num(name: string, v: unknown, dflt: number, min: number): number {
  if (v === undefined || v === null || v === '') return dflt;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n) || n < min) throw badInput('folder.badNumber', { setting: name, min, value: String(v) });
  return n;
}
