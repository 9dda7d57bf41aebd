/**
 * FolderWatcher: hands on each file an instrument writes into a folder, once, when it is complete.
 *
 * - Events: chokidar 4 (`fs.watch`) for live changes, or our own readdir+stat poller for network
 *   shares (UNC paths choose it automatically). chokidar's own `awaitWriteFinish` and initial scan
 *   are not used: they skip files present at start-up and look at size only.
 * - Our own inventory scan at start and a periodic rescan (events mode) find files the events
 *   missed (overflowing OS queues, a watcher paused or rebuilt).
 * - Stability gate: a file is sent only after its size AND mtime held still for `stabilityMs`,
 *   checked by one timer for all pending files, stats batched with bounded concurrency.
 * - Durable ledger (Journal): a file is sent once across restarts; a file sent but never
 *   acknowledged is sent again after a restart; acknowledged files are optionally moved to an
 *   archive folder or deleted, and never sent again unless their size/mtime change (new content).
 * - A missing folder is waited for; a folder deleted and re-created is watched again.
 *
 * Usable without Node-RED: `new FolderWatcher(opts)`, listen to `file` / `status` / `error`,
 * `await start()`, `await ack(file)`, `await close()`.
 */
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as path from 'path';
import { watch as chokidarWatch, type FSWatcher } from 'chokidar';
import { badInput, LabError } from '../../lib/http/errors';
import { WatchFilters } from './filters';
import { Ledger, LedgerEntry } from './ledger';
import { destinationFolder, moveInto } from './move';
import { RawActivitySettler, takeInventory } from './scanner';
import { StabilityGate } from './stability-gate';
import {
  afterFailure,
  afterSend,
  DEFAULT_RETRY_POLICY,
  FailureReason,
  JourneyHistory,
  journeyEvents,
  JourneySteps,
  RetryPolicy,
} from '../../lib/journey';
import {
  AckResult,
  errCode,
  errText,
  fileId,
  FileRef,
  FolderWatcherOptions,
  fullPathOf,
  isAbsoluteAnywhere,
  isUncPath,
  JourneyHistoryRecord,
  mapLimit,
  num,
  PostAction,
  relPath,
  ScanKind,
  WatchedFile,
  WatcherPhase,
  WatcherStatus,
} from './types';

export interface FolderWatcher {
  on(event: 'file', listener: (file: WatchedFile) => void): this;
  on(event: 'status', listener: (status: WatcherStatus) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'file', listener: (file: WatchedFile) => void): this;
  once(event: 'status', listener: (status: WatcherStatus) => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
}

export class FolderWatcher extends EventEmitter {
  readonly folder: string;
  readonly mode: 'events' | 'poll';
  readonly recursive: boolean;
  readonly stabilityMs: number;
  readonly pollIntervalMs: number;
  readonly rescanIntervalMs: number;
  readonly folderProbeMs: number;
  readonly emitEmptyFiles: boolean;
  readonly postAction: PostAction;
  readonly archiveFolder: string | undefined;
  readonly failedFolder: string | undefined;
  readonly retryPolicy: RetryPolicy;
  private readonly filters: WatchFilters;
  private readonly gate: StabilityGate;
  private readonly settler: RawActivitySettler;
  private readonly statConcurrency: number;
  private readonly ledgerFile: string | undefined;
  private readonly history: JourneyHistory<JourneyHistoryRecord> | null;

  private ledger: Ledger | null = null;
  private phase: WatcherPhase = 'starting';
  private started = false;
  private closed = false;

  /** Zero-byte files that held still: wait for content (or are sent, with emitEmptyFiles). */
  private readonly emptyWaiting = new Map<string, number>();
  /** Files in the folder, as last seen. */
  private readonly present = new Set<string>();
  /** Sent-but-unacknowledged (or failed) files from before a restart: send them again. */
  private readonly reemit = new Set<string>();
  /** Post-actions running, by relative path. */
  private readonly postRunning = new Set<string>();

  private watcher: FSWatcher | null = null;
  private eventsPaused = false;
  private rootId: string | null = null;
  private probeTimer: NodeJS.Timeout | null = null;
  private scanTimer: NodeJS.Timeout | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryTimerAt = 0;
  private pruneTimer: NodeJS.Timeout | null = null;
  private probing: Promise<void> | null = null;
  private scanning: Promise<void> | null = null;
  private scanQueued: ScanKind | null = null;
  private initialScanDone = false;

  private counts = { emitted: 0, done: 0, failed: 0, recovered: 0, errors: 0 };
  private lastProblem: Error | undefined;

  constructor(opts: FolderWatcherOptions) {
    super();
    const folder = typeof opts.folder === 'string' ? opts.folder.trim() : '';
    if (!folder) throw badInput('folder.notSet');
    if (folder.includes('\0')) throw badInput('folder.nulCharacter');
    if (/\$\{[^}]*\}/.test(folder)) throw badInput('folder.unresolvedEnv', { folder });
    if (!isAbsoluteAnywhere(folder)) throw badInput('folder.notAbsolute', { folder });
    this.folder = isUncPath(folder) || !path.isAbsolute(folder) ? folder : path.resolve(folder);

    const mode = opts.mode ?? 'auto';
    if (mode !== 'events' && mode !== 'poll' && mode !== 'auto') throw badInput('folder.badMode', { value: String(mode) });
    this.mode = mode === 'auto' ? (isUncPath(this.folder) ? 'poll' : 'events') : mode;
    this.recursive = !!opts.recursive;
    this.stabilityMs = num('stabilityMs', opts.stabilityMs, 5000, 0);
    this.pollIntervalMs = num('pollIntervalMs', opts.pollIntervalMs, 15000, 50);
    this.rescanIntervalMs = num('rescanIntervalMs', opts.rescanIntervalMs, 60000, 0);
    this.folderProbeMs = num('folderProbeMs', opts.folderProbeMs, 3000, 20);
    this.statConcurrency = Math.max(1, Math.floor(num('statConcurrency', opts.statConcurrency, 32, 1)));
    this.emitEmptyFiles = !!opts.emitEmptyFiles;
    this.ledgerFile = opts.ledgerFile;

    this.filters = new WatchFilters({
      folder: this.folder,
      recursive: this.recursive,
      include: opts.include,
      exclude: opts.exclude,
      ignoreTempFiles: opts.ignoreTempFiles,
    });

    const post = opts.postAction ?? 'none';
    if (post !== 'none' && post !== 'move' && post !== 'delete') throw badInput('folder.badPostAction', { value: String(post) });
    this.postAction = post;
    const ignoredInside = (relPosix: string) => {
      // Inside the watched tree: allowed only where the watcher will never look.
      const segs = relPosix.split('/');
      return !this.recursive || segs.some((_, i) => this.filters.dirIgnored(segs.slice(0, i + 1).join('/')));
    };
    this.archiveFolder =
      post === 'move'
        ? destinationFolder(
            opts.archiveFolder,
            this.folder,
            { notSet: 'folder.archiveNotSet', unresolved: 'folder.archiveUnresolvedEnv', notAbsolute: 'folder.archiveNotAbsolute', isWatched: 'folder.archiveIsWatched', inside: 'folder.archiveInside' },
            ignoredInside,
          )
        : undefined;
    this.failedFolder =
      opts.failedFolder !== undefined && opts.failedFolder.trim() !== ''
        ? destinationFolder(
            opts.failedFolder,
            this.folder,
            { notSet: 'folder.failedNotSet', unresolved: 'folder.failedUnresolvedEnv', notAbsolute: 'folder.failedNotAbsolute', isWatched: 'folder.failedIsWatched', inside: 'folder.failedInside' },
            ignoredInside,
          )
        : undefined;
    const r = opts.retry ?? {};
    this.retryPolicy = {
      baseMs: num('retry.baseMs', r.baseMs, DEFAULT_RETRY_POLICY.baseMs, 1),
      maxMs: num('retry.maxMs', r.maxMs, DEFAULT_RETRY_POLICY.maxMs, 1),
      giveUpAfterMs: num('retry.giveUpAfterMs', r.giveUpAfterMs, DEFAULT_RETRY_POLICY.giveUpAfterMs, 0),
    };
    const retentionMs = num('retentionMs', opts.retentionMs, 30 * 24 * 3600_000, 0);
    this.history = opts.historyDir ? new JourneyHistory<JourneyHistoryRecord>(opts.historyDir, 'journeys', retentionMs) : null;

    this.gate = new StabilityGate({
      stabilityMs: this.stabilityMs,
      statConcurrency: this.statConcurrency,
      emitEmptyFiles: this.emitEmptyFiles,
      fullPath: (rel) => this.fullPath(rel),
      onStable: (rel, size, mtimeMs) => this.emitFile(rel, size, mtimeMs),
      onVanished: (rel) => this.present.delete(rel),
      onEmptyHeldStill: (rel, mtimeMs) => this.emptyWaiting.set(rel, mtimeMs),
      onChecked: () => this.statusChanged(),
      onProblem: (err) => this.reportProblem(err),
    });
    this.settler = new RawActivitySettler({
      folder: this.folder,
      filters: this.filters,
      statConcurrency: this.statConcurrency,
      fullPath: (rel) => this.fullPath(rel),
      known: (rel) => this.present.has(rel) || this.gate.isPending(rel) || this.gate.isChecking(rel),
      onFound: (rel, size, mtimeMs) => this.observe(rel, size, mtimeMs, 'event'),
      onProblem: (err) => this.reportProblem(err),
    });
  }

  // ---------------------------------------------------------------- public API

  /** Opens the ledger, then watches the folder (or waits for it). Resolves once the first check ran. */
  async start(): Promise<void> {
    if (this.started) throw new Error('FolderWatcher already started');
    this.started = true;
    this.ledger = new Ledger(this.ledgerFile, this.folder);
    // Sent but never acknowledged (a crash or a redeploy): send again. Dead-lettered files stay
    // dead-lettered across restarts; retrying ones keep their schedule.
    for (const [rel, e] of this.ledger.entries()) if (e.state === 'emitted') this.reemit.add(rel);
    this.armRetryTimer();
    if (this.history) {
      this.history.prune();
      this.pruneTimer = setInterval(() => this.history?.prune(), 6 * 3600_000);
      this.pruneTimer.unref();
    }
    this.probeTimer = setInterval(() => void this.probeRoot(), this.folderProbeMs);
    await this.probeRoot();
  }

  /** Stops watching, cancels timers and closes the ledger. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.gate.close();
    this.settler.close();
    for (const t of [this.statusTimer, this.retryTimer]) if (t) clearTimeout(t);
    for (const t of [this.probeTimer, this.scanTimer, this.pruneTimer]) if (t) clearInterval(t);
    this.statusTimer = this.probeTimer = this.scanTimer = this.retryTimer = this.pruneTimer = null;
    const w = this.watcher;
    this.watcher = null;
    if (w) await w.close().catch(() => undefined);
    // Let a scan or post-action in flight finish its current step before the ledger closes.
    await Promise.allSettled([this.scanning, this.probing]);
    this.ledger?.close();
    this.history?.close();
    this.phase = 'closed';
    this.emit('status', this.getStatus());
  }

  /** Scans the folder now (the `rescan` input); resolves when the scan finished. */
  async rescan(): Promise<void> {
    if (this.closed || !this.started) return;
    if (this.phase !== 'watching') {
      await this.probeRoot();
      return;
    }
    await this.scan('rescan');
  }

  /**
   * Acknowledges a sent file (`ok`, the default) and runs the post-action; or (`ok: false`)
   * reports its attempt failed: the journey decides — a transient failure is sent again after a
   * backoff, a permanent one (or transient ones for longer than the policy allows) is
   * dead-lettered with its reason (moved to the failed folder, if one is set) and not sent again
   * until someone retries it or the file changes. Throws when the post-action fails (the file
   * stays acknowledged and the action is retried at the next rescan and after a restart).
   */
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
      const reason = result.failure ?? { code: 'FAILED', message: result.error ?? 'reported as failed', at: Date.now() };
      const decision = afterFailure(entry, reason, this.retryPolicy);
      let record = decision.record;
      this.reemit.delete(rel);
      this.counts.failed++;
      if (record.state === 'failed' && this.failedFolder) {
        try {
          record = { ...record, failedTo: await moveInto(this.failedFolder, rel, full) };
          this.present.delete(rel);
        } catch (err) {
          this.reportProblem(err); // dead-lettered in place; the reason is kept all the same
        }
      }
      this.ledger.set(rel, record);
      if (record.state === 'retrying') this.armRetryTimer();
      this.statusChanged();
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
    this.statusChanged();
    return { outcome: 'done', ...base, ...r };
  }

  /**
   * Sends a retrying or dead-lettered file again now, as a new attempt (a file moved to the failed
   * folder is moved back first). `unknown` when there is no such file; `already-done` for a done one.
   */
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
    this.ledger.set(rel, { ...entry, failedTo: undefined, firstFailureAt: undefined, mtimeMs: st.mtimeMs, size: st.size });
    this.present.add(rel);
    this.emitFile(rel, st.size, st.mtimeMs);
    this.statusChanged();
    return { outcome: 'retrying', ...base, nextAttemptAt: Date.now() };
  }

  /** Marks a file done by hand (`by`: who), without processing it; it is not sent again. */
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
    this.finished(rel, record);
    this.statusChanged();
    return { outcome: 'done', ...base };
  }

  /** Adds what a node did (blob, processor, task) to a live journey, by its id. */
  note(journeyId: string, steps: JourneySteps): void {
    if (!this.ledger || this.closed) return;
    const rel = this.ledger.relOf(journeyId);
    const entry = rel === undefined ? undefined : this.ledger.get(rel);
    if (!entry || rel === undefined) return;
    this.ledger.set(rel, { ...entry, steps: { ...entry.steps, ...steps } });
  }

  /** Every live journey (files on their way, retrying, dead-lettered, done and still present). */
  *journeys(): IterableIterator<[string, LedgerEntry]> {
    if (this.ledger && !this.closed) yield* this.ledger.entries();
  }

  /** Finished journeys kept for the retention period, newest first. */
  *finishedJourneys(): IterableIterator<JourneyHistoryRecord> {
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

  // ---------------------------------------------------------------- retries

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
        this.emitFile(rel, st.size, st.mtimeMs);
      } else {
        // New content: it goes through the stability gate as a new version, with a new journey.
        this.observe(rel, st.size, st.mtimeMs, 'rescan');
      }
    });
    this.armRetryTimer();
    this.statusChanged();
  }

  /** Ends a live journey that did not reach done (its file went away): kept in the history. */
  private forget(rel: string, e: LedgerEntry): void {
    this.ledger?.delete(rel);
    this.reemit.delete(rel);
    this.history?.append({ ...e, relativePath: rel, path: this.fullPath(rel), folder: this.folder, gone: Date.now() });
  }

  /** A journey reached done: kept in the history, announced so nodes can drop per-file state. */
  private finished(rel: string, e: LedgerEntry): void {
    this.history?.append({ ...e, relativePath: rel, path: this.fullPath(rel), folder: this.folder });
    this.counts.done++;
    journeyEvents.emit('finished', e.id);
  }

  /** Test/diagnostic hook: while paused, file-system events are dropped (rescans still run). */
  setEventsPaused(paused: boolean): void {
    this.eventsPaused = paused;
  }

  /** The ledger's record for a file (relative path), for diagnostics. */
  ledgerEntry(relativePath: string): LedgerEntry | undefined {
    return this.ledger?.get(relativePath);
  }

  getStatus(): WatcherStatus {
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
    return {
      phase: this.phase,
      folder: this.folder,
      mode: this.mode,
      files: this.present.size,
      pending: this.gate.size,
      awaitingAck,
      retrying,
      deadLettered,
      ...this.counts,
      lastProblem: this.lastProblem,
    };
  }

  // ---------------------------------------------------------------- filters

  private rel(abs: string): string {
    return relPath(this.folder, abs);
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
      const rel = this.rel(path.resolve(ref.path));
      if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) throw badInput('folder.refNotInside', { file: ref.path, folder: this.folder });
      return rel;
    }
    throw badInput('folder.refNoFile');
  }

  // ---------------------------------------------------------------- folder lifecycle

  /** Checks the folder: missing → wait; back or re-created → (re)build the backend and scan. */
  private probeRoot(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (!this.probing) {
      this.probing = this.doProbe()
        .catch((err) => this.reportProblem(err))
        .finally(() => {
          this.probing = null;
        });
    }
    return this.probing;
  }

  private async doProbe(): Promise<void> {
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(this.folder);
    } catch (err) {
      if (this.closed) return;
      await this.stopBackend();
      const code = errCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        this.setPhase('waiting');
      } else {
        this.setPhase('error', new LabError('UNAVAILABLE', 'folder.cannotRead', { folder: this.folder, reason: errText(err) }, { cause: err }));
      }
      return;
    }
    if (this.closed) return;
    if (!st.isDirectory()) {
      await this.stopBackend();
      this.setPhase('error', badInput('folder.notAFolder', { folder: this.folder }));
      return;
    }
    const id = `${st.dev}:${st.ino}:${st.birthtimeMs}`;
    if (this.phase === 'watching' && id === this.rootId) return;
    // First sight, back after missing, or deleted and re-created (new inode): (re)build.
    await this.stopBackend();
    this.rootId = id;
    await this.startBackend();
  }

  private async startBackend(): Promise<void> {
    if (this.mode === 'events') {
      const w = chokidarWatch(this.folder, {
        ignoreInitial: true,
        awaitWriteFinish: false,
        alwaysStat: true,
        atomic: true,
        depth: this.recursive ? undefined : 0,
        ignorePermissionErrors: true,
        persistent: true,
        ignored: (p: string, stats?: fs.Stats) => this.filters.chokidarIgnored(p, stats),
      });
      w.on('add', (p: string, st?: fs.Stats) => this.onEvent(p, st));
      w.on('change', (p: string, st?: fs.Stats) => this.onEvent(p, st));
      w.on('unlink', (p: string) => this.onUnlink(p));
      w.on('unlinkDir', (p: string) => {
        if (this.rel(p) === '') void this.probeRoot();
      });
      w.on('raw', (_ev: string, evPath: string, details: unknown) =>
        this.onRaw(evPath ?? null, (details as { watchedPath?: string } | undefined)?.watchedPath),
      );
      w.on('error', (err: unknown) => this.onWatcherError(err));
      this.watcher = w;
      await new Promise<void>((resolve) => w.once('ready', () => resolve()));
      if (this.closed || this.watcher !== w) return;
      if (this.rescanIntervalMs > 0) this.scanTimer = setInterval(() => void this.scan('rescan'), this.rescanIntervalMs);
    } else {
      this.scanTimer = setInterval(() => void this.scan('poll'), this.pollIntervalMs);
    }
    this.setPhase('watching');
    await this.scan(this.initialScanDone ? 'rescan' : 'initial');
  }

  private async stopBackend(): Promise<void> {
    if (this.scanTimer) clearInterval(this.scanTimer);
    this.scanTimer = null;
    const w = this.watcher;
    this.watcher = null;
    this.rootId = null;
    this.settler.clear();
    this.gate.clear();
    this.emptyWaiting.clear();
    this.present.clear();
    if (w) await w.close().catch(() => undefined);
  }

  private onWatcherError(err: unknown): void {
    const code = errCode(err);
    this.reportProblem(new LabError('UNAVAILABLE', 'folder.watchFailed', { folder: this.folder, reason: errText(err) }, { cause: err }));
    if (code === 'ENOSPC' || code === 'EMFILE') {
      this.reportProblem(new LabError('UNAVAILABLE', 'folder.tooManyWatches', { code }));
    }
    // The root may be gone (EPERM on Windows when a watched folder is deleted): check it.
    void this.probeRoot();
  }

  // ---------------------------------------------------------------- discovery

  private onEvent(abs: string, st?: fs.Stats): void {
    if (this.closed || this.eventsPaused) return;
    const rel = this.rel(abs);
    if (!rel || rel.startsWith('..')) return;
    if (st) {
      if (st.isFile()) this.observe(rel, st.size, st.mtimeMs, 'event');
      return;
    }
    fs.stat(abs, (err, s) => {
      if (!err && s.isFile()) this.observe(rel, s.size, s.mtimeMs, 'event');
    });
  }

  /**
   * Raw `fs.watch` activity. Under load chokidar 4 can drop `add` events while the raw events all
   * arrive (measured: 1,600–3,400 of 10,000 renamed files never reported with both cores busy), so
   * the directory that saw activity is listed again once the activity settles; names nobody
   * reported are statted and gated. Cheap: one readdir per burst, stats only for unknown names.
   */
  private onRaw(evPath: string | null, watchedPath: string | undefined): void {
    if (this.closed || this.eventsPaused || !watchedPath) return;
    const rel = this.rel(watchedPath);
    if (rel.startsWith('..')) return;
    // chokidar watches folders and files; activity on a watched file marks its folder.
    const isFile = rel !== '' && (this.present.has(rel) || this.gate.isPending(rel) || (evPath !== null && path.basename(watchedPath) === evPath));
    this.settler.mark(isFile ? (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '') : rel);
  }

  private onUnlink(abs: string): void {
    if (this.closed || this.eventsPaused) return;
    const rel = this.rel(abs);
    this.gate.delete(rel);
    this.emptyWaiting.delete(rel);
    this.present.delete(rel);
    this.statusChanged();
  }

  /** A file was seen with this size and mtime (event or scan): gate it if it is new or changed. */
  private observe(rel: string, size: number, mtimeMs: number, source: 'event' | ScanKind): void {
    if (this.closed || !this.ledger) return;
    this.present.add(rel);
    // Already in the gate: a change starts its window again.
    if (this.gate.seen(rel, size, mtimeMs)) return;
    const entry = this.ledger.get(rel);
    if (entry && entry.size === size && entry.mtimeMs === mtimeMs) {
      if (entry.state === 'acked' && source !== 'event') void this.retryPostAction(rel);
      if (!this.reemit.has(rel)) return;
    }
    const emptyMtime = this.emptyWaiting.get(rel);
    if (emptyMtime !== undefined) {
      if (size === 0 && emptyMtime === mtimeMs) return;
      this.emptyWaiting.delete(rel);
    }
    if (source === 'rescan' && this.mode === 'events' && (!entry || entry.size !== size || entry.mtimeMs !== mtimeMs)) {
      this.counts.recovered++;
    }
    this.gate.add(rel, size, mtimeMs);
    this.statusChanged();
  }

  /** Lists the folder (readdir + batched stat) and diffs it against the ledger. */
  private scan(kind: ScanKind): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.scanning) {
      // One scan at a time; a request during a scan runs once more right after it.
      if (!this.scanQueued || kind === 'initial') this.scanQueued = kind;
      return this.scanning;
    }
    this.scanning = this.doScan(kind)
      .catch((err) => this.reportProblem(err))
      .finally(() => {
        this.scanning = null;
        const again = this.scanQueued;
        this.scanQueued = null;
        if (again && !this.closed) void this.scan(again);
      });
    return this.scanning;
  }

  private async doScan(kind: ScanKind): Promise<void> {
    const scanStartedAt = Date.now();
    const found = await takeInventory({
      folder: this.folder,
      recursive: this.recursive,
      filters: this.filters,
      statConcurrency: this.statConcurrency,
      fullPath: (rel) => this.fullPath(rel),
      isClosed: () => this.closed,
      onProblem: (err) => this.reportProblem(err),
      onRootGone: () => void this.probeRoot(),
    });
    if (!found || this.closed || !this.ledger) return;
    if (kind === 'initial')    if (this.closed || !this.ledger) return;
    if (kind === 'initial') this.initialScanDone = true;

    for (const [rel, s] of found) this.observe(rel, s.size, s.mtimeMs, kind);

    // Forget what is no longer there.
    for (const rel of [...this.present]) if (!found.has(rel) && !this.gate.isPending(rel) && !this.gate.isChecking(rel)) this.present.delete(rel);
    // Pending files are left to the gate: it drops those that vanished (a file reported by an
    // event while this scan ran is not in `found`, and must not be forgotten).
    for (const rel of [...this.emptyWaiting.keys()]) if (!found.has(rel)) this.emptyWaiting.delete(rel);
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
    this.statusChanged();
  }

  private emitFile(rel: string, size: number, mtimeMs: number): void {
    if (!this.ledger || this.closed) return;
    const prev = this.ledger.get(rel);
    const id = fileId(rel, size, mtimeMs);
    if (prev && prev.id === id && (prev.state === 'done' || prev.state === 'acked')) return;
    // Written before it is sent: a crash in between sends it again, never loses it.
    const record = afterSend(prev, id, size, mtimeMs);
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
    };
    try {
      this.emit('file', file);
    } catch (err) {
      this.reportProblem(err);
    }
  }

  // ---------------------------------------------------------------- post-action

  private async retryPostAction(rel: string): Promise<void> {
    if (this.postRunning.has(rel)) return;
    try {
      await this.runPostAction(rel);
    } catch (err) {
      this.reportProblem(err);
    }
  }

  /** Runs the post-action for an acknowledged file and records it as done. */
  private async runPostAction(rel: string): Promise<{ archivedTo?: string; skipped?: string }> {
    if (this.postRunning.has(rel)) throw new LabError('UNAVAILABLE', 'folder.busy', { file: rel });
    this.postRunning.add(rel);
    try {
      const entry = this.ledger?.get(rel);
      if (!entry || entry.state !== 'acked') return {};
      const full = this.fullPath(rel);
      let skipped: string | undefined;
      let archivedTo: string | undefined;
      if (this.postAction !== 'none') {
        let st: fs.Stats | null = null;
        try {
          st = await fs.promises.stat(full);
        } catch (err) {
          if (errCode(err) !== 'ENOENT') {
            const key = this.postAction === 'move' ? 'folder.cannotMove' : 'folder.cannotDelete';
            throw new LabError('UNAVAILABLE', key, { file: full, reason: errText(err) }, { cause: err });
          }
          skipped = 'the file is gone';
        }
        if (st && (st.size !== entry.size || st.mtimeMs !== entry.mtimeMs)) {
          // New content arrived after the ack: leave it; it will be sent as a new version.
          skipped = 'the file changed after it was sent';
        } else if (st && this.postAction === 'delete') {
          await fs.promises.unlink(full).catch((err) => {
            if (errCode(err) !== 'ENOENT') throw new LabError('UNAVAILABLE', 'folder.cannotDelete', { file: full, reason: errText(err) }, { cause: err });
          });
        } else if (st && this.postAction === 'move') {
          archivedTo = await moveInto(this.archiveFolder as string, rel, full);
        }
      }
      if (this.closed || !this.ledger) return { archivedTo, skipped };
      const now = this.ledger.get(rel);
      if (now && now.id === entry.id) {
        const record: LedgerEntry = { ...now, state: 'done', doneAt: Date.now(), archivedTo };
        this.ledger.set(rel, record);
        this.finished(rel, record);
      }
      if (this.postAction !== 'none' && !skipped) {
        this.present.delete(rel);
      }
      return { archivedTo, skipped };
    } finally {
      this.postRunning.delete(rel);
    }
  }

  // ---------------------------------------------------------------- status

  private setPhase(phase: WatcherPhase, error?: LabError): void {
    if (error) {
      this.lastProblem = error;
      this.counts.errors++;
    }
    const changed = this.phase !== phase;
    this.phase = phase;
    if (changed || error) this.flushStatus();
    if (error) this.emitError(error);
  }

  private reportProblem(err: unknown): void {
    if (this.closed) return;
    const e = err instanceof Error ? err : new Error(String(err));
    this.lastProblem = e;
    this.counts.errors++;
    this.statusChanged();
    this.emitError(e);
  }

  private emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** Status events at most every 250 ms (a burst of 10,000 files must not flood the editor). */
  private statusChanged(): void {
    if (this.statusTimer || this.closed) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = null;
      if (!this.closed) this.emit('status', this.getStatus());
    }, 250);
  }

  private flushStatus(): void {
    if (this.statusTimer) clearTimeout(this.statusTimer);
    this.statusTimer = null;
    if (!this.closed) this.emit('status', this.getStatus());
  }
}
