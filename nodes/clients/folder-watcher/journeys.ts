/**
 * The files' journeys: the durable ledger (a file is sent once across restarts; one sent but never
 * acknowledged is sent again), acknowledgements and their post-action (archive / delete), failures
 * (retried after a backoff, or dead-lettered into the failed folder), retries and skips by hand,
 * and the history of finished journeys. The watcher finds files and tells this when one is ready;
 * this tells the watcher what it sent and which files left (or came back to) the folder.
 */
import * as fs from 'fs';
import * as path from 'path';
import { badInput, LabError } from '../../lib/http/errors';
import { afterFailure, afterSend, FailureReason, JourneyHistory, journeyEvents, JourneySteps, RetryPolicy } from '../../lib/journey';
import { Ledger, LedgerEntry } from './ledger';
import { moveInto } from './move';
import { applyPostAction, PostActionResult } from './post-action';
import {
  AckResult,
  errText,
  fileId,
  FileRef,
  fullPathOf,
  isAbsoluteAnywhere,
  JourneyHistoryRecord,
  mapLimit,
  PostAction,
  relPath,
  ScanKind,
  WatchedFile,
} from './types';

export interface JourneyOptions {
  folder: string;
  /** Journal file for the durable ledger; without one the ledger lives in memory only. */
  ledgerFile: string | undefined;
  postAction: PostAction;
  archiveFolder: string | undefined;
  failedFolder: string | undefined;
  retryPolicy: RetryPolicy;
  /** Finished journeys are kept here (none when null). */
  history: JourneyHistory<JourneyHistoryRecord> | null;
  statConcurrency: number;
}

/** What the journeys tell the watcher. */
export interface JourneyCallbacks {
  /** Send this file (the watcher's `file` event). */
  send(file: WatchedFile): void;
  /** A file due for a retry has new content: it goes through the stability gate. */
  changed(rel: string, size: number, mtimeMs: number): void;
  /** The file left the watched folder (archived, deleted, moved to the failed folder). */
  movedAway(rel: string): void;
  /** The file is back in the watched folder (a retry moved it back from the failed folder). */
  back(rel: string): void;
  statusChanged(): void;
  problem(err: unknown): void;
  /** A journey's record changed (set or removed): its id. */
  journey?(id: string): void;
}

export class Journeys {
  private readonly folder: string;
  private readonly ledgerFile: string | undefined;
  private readonly postAction: PostAction;
  private readonly archiveFolder: string | undefined;
  private readonly failedFolder: string | undefined;
  private readonly retryPolicy: RetryPolicy;
  private readonly history: JourneyHistory<JourneyHistoryRecord> | null;
  private readonly statConcurrency: number;

  private ledger: Ledger | null = null;
  private closed = false;
  /** Sent-but-unacknowledged (or failed) files from before a restart: send them again. */
  private readonly reemit = new Set<string>();
  /** Post-actions running, by relative path. */
  private readonly postRunning = new Set<string>();
  /** Moves and post-actions in flight: `drain` waits for them, so none ends unrecorded at close. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private retryTimer: NodeJS.Timeout | null = null;
  private retryTimerAt = 0;
  private pruneTimer: NodeJS.Timeout | null = null;

  /** Files sent, acknowledged and post-processed (done), and failures reported, since start. */
  readonly counts = { emitted: 0, done: 0, failed: 0 };
  /** When a journey last reached done (Unix ms), since start. */
  lastDoneAt: number | undefined;

  constructor(
    opts: JourneyOptions,
    private readonly on: JourneyCallbacks,
  ) {
    this.folder = opts.folder;
    this.ledgerFile = opts.ledgerFile;
    this.postAction = opts.postAction;
    this.archiveFolder = opts.archiveFolder;
    this.failedFolder = opts.failedFolder;
    this.retryPolicy = opts.retryPolicy;
    this.history = opts.history;
    this.statConcurrency = opts.statConcurrency;
  }

  /** The ledger is open (and not closed). */
  get isOpen(): boolean {
    return this.ledger !== null;
  }

  /** Opens the ledger; arms the retry timer and the history's pruning. */
  open(): void {
    this.ledger = new Ledger(this.ledgerFile, this.folder, (id) => this.on.journey?.(id));
    // Sent but never acknowledged (a crash or a redeploy): send again. Dead-lettered files stay
    // dead-lettered across restarts; retrying ones keep their schedule.
    for (const [rel, e] of this.ledger.entries()) if (e.state === 'emitted') this.reemit.add(rel);
    this.armRetryTimer();
    if (this.history) {
      this.history.prune();
      this.pruneTimer = setInterval(() => this.history?.prune(), 6 * 3600_000);
      this.pruneTimer.unref();
    }
  }

  /** No more retries or actions: cancels the timers (the ledger stays open until `close`). */
  stop(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.retryTimer = this.pruneTimer = null;
  }

  /** Resolves when the moves and post-actions in flight have finished and been recorded. */
  async drain(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p)).catch(() => undefined);
    return p;
  }

  /** Closes the ledger and the history. */
  close(): void {
    this.ledger?.close();
    this.history?.close();
  }

  /** The ledger's record for a file (relative path). */
  get(rel: string): LedgerEntry | undefined {
    return this.ledger?.get(rel);
  }

  /** A file sent before a restart and never acknowledged: send it again even though it is unchanged. */
  awaitsResend(rel: string): boolean {
    return this.reemit.has(rel);
  }

  /** Journeys by state, for the status. */
  summary(): { awaitingAck: number; retrying: number; deadLettered: number } {
    let awaitingAck = 0;
    let retrying = 0;
    let deadLettered = 0;
    if (this.ledger && !this.closed) {
      for (const [, e] of this.ledger.entries()) {
        if (e.state === 'emitted') awaitingAck++;
        else if (e.state === 'retrying') retrying++;
        else if (e.state === 'failed') deadLettered++;
      }
    }
    return { awaitingAck, retrying, deadLettered };
  }

  /** What `FolderWatcher.ack` does (documented there). */
  async ack(ref: FileRef, result: { ok?: boolean; failure?: FailureReason; error?: string } = {}): Promise<AckResult> {
    if (!this.ledger || this.closed) throw new LabError('UNAVAILABLE', 'folder.notRunning');
    const rel = this.resolveRef(ref);
    const full = this.fullPath(rel);
    const entry = this.ledger.get(rel);
    const base = { relativePath: rel, path: full };
    if (!entry) return { outcome: 'unknown', ...base };
    if (ref.id && ref.id !== entry.id) return { outcome: 'stale', ...base };
    if (result.ok === false) {
      if (entry.state === 'done' || entry.state === 'acked') return { outcome: 'already-done', ...base };
      // A late report about an attempt that a newer one has replaced says nothing about the newer one.
      if (ref.attempt !== undefined && ref.attempt < entry.emitCount && entry.state === 'emitted') return { outcome: 'stale', ...base };
      // Only a file on its way can fail; a second report of the same attempt (e.g. a Catch node and
      // a failed output both wired back) changes nothing.
      if (entry.state === 'retrying') return { outcome: 'retrying', ...base, nextAttemptAt: entry.nextAttemptAt };
      if (entry.state === 'failed') return { outcome: 'failed', ...base, failedTo: entry.failedTo };
      const reason = result.failure ?? { code: 'FAILED', message: result.error ?? 'reported as failed', at: Date.now() };
      const decision = afterFailure(entry, reason, this.retryPolicy);
      let record = decision.record;
      this.reemit.delete(rel);
      this.counts.failed++;
      if (record.state === 'failed' && this.failedFolder) {
        try {
          record = { ...record, failedTo: await this.track(moveInto(this.failedFolder, rel, full)) };
          this.on.movedAway(rel);
        } catch (err) {
          this.on.problem(err); // dead-lettered in place; the reason is kept all the same
        }
      }
      this.ledger.set(rel, record);
      if (record.state === 'retrying') this.armRetryTimer();
      this.on.statusChanged();
      return record.state === 'retrying'
        ? { outcome: 'retrying', ...base, nextAttemptAt: record.nextAttemptAt }
        : { outcome: 'failed', ...base, failedTo: record.failedTo };
    }
    if (entry.state === 'done') return { outcome: 'already-done', ...base, archivedTo: entry.archivedTo };
    if (entry.state !== 'acked') {
      this.ledger.set(rel, { ...entry, state: 'acked', ackedAt: Date.now(), nextAttemptAt: undefined });
      this.reemit.delete(rel);
    }
    const r = await this.runPostAction(rel);
    this.on.statusChanged();
    return { outcome: 'done', ...base, ...r };
  }

  /** What `FolderWatcher.retry` does (documented there). */
  async retry(ref: FileRef | string): Promise<AckResult> {
    if (!this.ledger || this.closed) throw new LabError('UNAVAILABLE', 'folder.notRunning');
    const found = this.find(ref);
    if (!found) return { outcome: 'unknown', relativePath: '', path: typeof ref === 'string' ? ref : ref.path ?? ref.relativePath ?? '' };
    const [rel, entry] = found;
    const full = this.fullPath(rel);
    const base = { relativePath: rel, path: full };
    if (entry.state === 'done' || entry.state === 'acked') return { outcome: 'already-done', ...base };
    if (entry.state === 'emitted') return { outcome: 'retrying', ...base };
    if (entry.failedTo) {
      try {
        await fs.promises.mkdir(path.dirname(full), { recursive: true });
        await fs.promises.rename(entry.failedTo, full);
      } catch (err) {
        throw new LabError('UNAVAILABLE', 'folder.cannotMoveTo', { file: entry.failedTo, target: full, reason: errText(err) }, { cause: err });
      }
    }
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(full);
    } catch {
      this.forget(rel, entry);
      return { outcome: 'unknown', ...base };
    }
    // The file's mtime survives a rename, so its identity (and its journals' records) carry over.
    // A person's retry starts a fresh retry window.
    // After Benchling's processing FAILED, the same processor would only report the same failure:
    // the retried attempts process the file anew (the configuration may have been fixed since).
    const reprocess = entry.failure?.code === 'TASK_FAILED' && entry.steps?.processorId ? entry.steps.processorId : entry.reprocess;
    this.ledger.set(rel, { ...entry, failedTo: undefined, firstFailureAt: undefined, mtimeMs: st.mtimeMs, size: st.size, reprocess });
    this.on.back(rel);
    this.send(rel, st.size, st.mtimeMs);
    this.on.statusChanged();
    return { outcome: 'retrying', ...base, nextAttemptAt: Date.now() };
  }

  /** What `FolderWatcher.skip` does (documented there). */
  async skip(ref: FileRef | string, by: string): Promise<AckResult> {
    if (!this.ledger || this.closed) throw new LabError('UNAVAILABLE', 'folder.notRunning');
    const found = this.find(ref);
    if (!found) return { outcome: 'unknown', relativePath: '', path: typeof ref === 'string' ? ref : ref.path ?? ref.relativePath ?? '' };
    const [rel, entry] = found;
    const base = { relativePath: rel, path: this.fullPath(rel) };
    if (entry.state === 'done') return { outcome: 'already-done', ...base };
    const now = Date.now();
    const record: LedgerEntry = { ...entry, state: 'done', doneAt: now, nextAttemptAt: undefined, skipped: { by, at: now } };
    this.ledger.set(rel, record);
    this.reemit.delete(rel);
    this.done(rel, record);
    this.on.statusChanged();
    return { outcome: 'done', ...base };
  }

  /** What `FolderWatcher.note` does (documented there). */
  note(journeyId: string, steps: JourneySteps): void {
    if (!this.ledger || this.closed) return;
    const rel = this.ledger.relOf(journeyId);
    const entry = rel === undefined ? undefined : this.ledger.get(rel);
    if (!entry || rel === undefined) return;
    this.ledger.set(rel, { ...entry, steps: { ...entry.steps, ...steps } });
  }

  /** Every live journey (files on their way, retrying, dead-lettered, done and still present). */
  *live(): IterableIterator<[string, LedgerEntry]> {
    if (this.ledger && !this.closed) yield* this.ledger.entries();
  }

  /** The history of finished journeys (null when none is kept). */
  get historyStore(): JourneyHistory<JourneyHistoryRecord> | null {
    return this.history;
  }

  /** Finished journeys kept for the retention period, newest first. */
  *finished(): IterableIterator<JourneyHistoryRecord> {
    if (this.history) yield* this.history.newestFirst();
  }

  /** A live journey by its id, path or relative path. */
  private find(ref: FileRef | string): [string, LedgerEntry] | undefined {
    if (!this.ledger) return undefined;
    if (typeof ref === 'string') {
      const byId = this.ledger.relOf(ref);
      if (byId !== undefined) return [byId, this.ledger.get(byId) as LedgerEntry];
      ref = isAbsoluteAnywhere(ref) ? { path: ref } : { relativePath: ref };
    }
    if (ref.id && !ref.path && !ref.relativePath) {
      const r = this.ledger.relOf(ref.id);
      return r === undefined ? undefined : [r, this.ledger.get(r) as LedgerEntry];
    }
    let rel: string;
    try {
      rel = this.resolveRef(ref);
    } catch {
      // a path in the failed folder names the file too
      const p = ref.path ? path.resolve(ref.path) : undefined;
      for (const [r, e] of this.ledger.entries()) if (p && e.failedTo && path.resolve(e.failedTo) === p) return [r, e];
      return undefined;
    }
    const entry = this.ledger.get(rel);
    return entry ? [rel, entry] : undefined;
  }

  /** After a scan (started at `scanStartedAt`) found `found`: ends the journeys of files that are gone. */
  sweep(found: Map<string, unknown>, scanStartedAt: number, kind: ScanKind): void {
    if (!this.ledger) return;
    const gone: string[] = [];
    for (const [rel, e] of this.ledger.entries()) {
      if (found.has(rel) || this.postRunning.has(rel)) continue;
      // Changed while this scan ran (the listing may predate the file): decide next time.
      if (Math.max(e.emittedAt, e.ackedAt ?? 0, e.doneAt ?? 0) >= scanStartedAt) continue;
      // A sent-but-unacknowledged file may still be acknowledged (the flow may have moved it
      // itself); its record is dropped at the next start.
      if (e.state === 'emitted' && kind !== 'initial') continue;
      // A dead-letter moved to the failed folder lives on there, until retried or skipped.
      if (e.failedTo) continue;
      gone.push(rel);
    }
    for (const rel of gone) {
      const e = this.ledger.get(rel) as LedgerEntry;
      // A done journey is in the history already; any other ends here, and is kept there too.
      if (e.state === 'done') {
        this.ledger.delete(rel);
        this.reemit.delete(rel);
      } else this.forget(rel, e);
    }
  }

  /** One timer for the earliest due retry. */
  private armRetryTimer(): void {
    if (this.closed || !this.ledger) return;
    let next = Infinity;
    for (const [, e] of this.ledger.entries()) if (e.state === 'retrying' && (e.nextAttemptAt ?? 0) < next) next = e.nextAttemptAt ?? 0;
    if (next === Infinity) return;
    if (this.retryTimer && this.retryTimerAt <= next) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimerAt = next;
    // setTimeout holds at most ~24.8 days; a later retry is re-armed when this one fires.
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.runRetries();
    }, Math.min(Math.max(0, next - Date.now()), 2 ** 31 - 1));
  }

  private async runRetries(): Promise<void> {
    if (this.closed || !this.ledger) return;
    const now = Date.now();
    const due: Array<[string, LedgerEntry]> = [];
    for (const [rel, e] of this.ledger.entries()) if (e.state === 'retrying' && (e.nextAttemptAt ?? 0) <= now) due.push([rel, e]);
    await mapLimit(due, this.statConcurrency, async ([rel, e]) => {
      let st: fs.Stats | null = null;
      try {
        st = await fs.promises.stat(this.fullPath(rel));
      } catch {
        st = null;
      }
      if (this.closed || this.ledger?.get(rel) !== e) return;
      if (!st || !st.isFile()) {
        this.forget(rel, e); // removed by someone: nothing left to send
      } else if (st.size === e.size && st.mtimeMs === e.mtimeMs) {
        this.send(rel, st.size, st.mtimeMs);
      } else {
        // New content: it goes through the stability gate as a new version, with a new journey.
        this.on.changed(rel, st.size, st.mtimeMs);
      }
    });
    this.armRetryTimer();
    this.on.statusChanged();
  }

  /** Ends a live journey that did not reach done (its file went away): kept in the history. */
  private forget(rel: string, e: LedgerEntry): void {
    this.ledger?.delete(rel);
    this.reemit.delete(rel);
    this.history?.append({ ...e, relativePath: rel, path: this.fullPath(rel), folder: this.folder, gone: Date.now() });
  }

  /** A journey reached done: kept in the history, announced so nodes can drop per-file state. */
  private done(rel: string, e: LedgerEntry): void {
    this.history?.append({ ...e, relativePath: rel, path: this.fullPath(rel), folder: this.folder });
    this.counts.done++;
    this.lastDoneAt = e.doneAt ?? Date.now();
    journeyEvents.emit('finished', e.id, { ...e, relativePath: rel, path: this.fullPath(rel), folder: this.folder });
  }

  /** Sends a file that held still (or is due again): recorded in the ledger first. */
  send(rel: string, size: number, mtimeMs: number, seenAt?: number): void {
    if (!this.ledger || this.closed) return;
    const prev = this.ledger.get(rel);
    const id = fileId(rel, size, mtimeMs);
    if (prev && prev.id === id && (prev.state === 'done' || prev.state === 'acked')) return;
    // Written before it is sent: a crash in between sends it again, never loses it.
    const record = afterSend(prev, id, size, mtimeMs, Date.now(), seenAt);
    this.ledger.set(rel, record);
    this.reemit.delete(rel);
    this.counts.emitted++;
    const file: WatchedFile = {
      id,
      path: this.fullPath(rel),
      relativePath: rel,
      name: rel.slice(rel.lastIndexOf('/') + 1),
      size,
      mtimeMs,
      deliveryCount: record.emitCount,
      attempt: record.emitCount,
      ...(record.reprocess ? { reprocess: record.reprocess } : {}),
    };
    try {
      this.on.send(file);
    } catch (err) {
      this.on.problem(err);
    }
  }

  /** An acknowledged file seen again by a scan: its post-action did not finish; run it again. */
  async retryPostAction(rel: string): Promise<void> {
    if (this.postRunning.has(rel)) return;
    try {
      await this.runPostAction(rel);
    } catch (err) {
      this.on.problem(err);
    }
  }

  /** Runs the post-action for an acknowledged file and records it as done. */
  private runPostAction(rel: string): Promise<PostActionResult> {
    if (this.postRunning.has(rel)) return Promise.reject(new LabError('UNAVAILABLE', 'folder.busy', { file: rel }));
    return this.track(this.runPostActionNow(rel));
  }

  private async runPostActionNow(rel: string): Promise<PostActionResult> {
    this.postRunning.add(rel);
    try {
      const entry = this.ledger?.get(rel);
      if (!entry || entry.state !== 'acked') return {};
      const { archivedTo, skipped } = await applyPostAction(this.postAction, this.archiveFolder, rel, this.fullPath(rel), entry);
      // Recorded even when the watcher is closing: the file has moved, and close waits for this.
      if (!this.ledger) return { archivedTo, skipped };
      const now = this.ledger.get(rel);
      if (now && now.id === entry.id) {
        const record: LedgerEntry = { ...now, state: 'done', doneAt: Date.now(), archivedTo };
        this.ledger.set(rel, record);
        this.done(rel, record);
      }
      if (this.postAction !== 'none' && !skipped) {
        this.on.movedAway(rel);
      }
      return { archivedTo, skipped };
    } finally {
      this.postRunning.delete(rel);
    }
  }

  private fullPath(rel: string): string {
    return fullPathOf(this.folder, rel);
  }

  private resolveRef(ref: FileRef): string {
    if (ref.relativePath && typeof ref.relativePath === 'string') {
      const rel = ref.relativePath.replace(/\\/g, '/');
      if (rel.split('/').includes('..') || isAbsoluteAnywhere(rel)) throw badInput('folder.refOutside', { path: rel });
      return rel;
    }
    if (ref.path && typeof ref.path === 'string') {
      const rel = relPath(this.folder, path.resolve(ref.path));
      if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) throw badInput('folder.refNotInside', { file: ref.path, folder: this.folder });
      return rel;
    }
    throw badInput('folder.refNoFile');
  }
}
