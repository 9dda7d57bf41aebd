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
 *
 * This file coordinates: it keeps the folder's lifecycle (probe, events backend, scans) and the
 * status, and hands on to its parts — options.ts (settings), filters.ts (include/exclude/temp),
 * scanner.ts (inventory listing, raw-activity settle), stability-gate.ts, journeys.ts (ledger,
 * acks, retries, dead-letters, history) with post-action.ts and move.ts.
 */
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as path from 'path';
import { watch as chokidarWatch, type FSWatcher } from 'chokidar';
import { badInput, LabError } from '../../lib/http/errors';
import { WatchFilters } from './filters';
import { Journeys } from './journeys';
import type { LedgerEntry } from './ledger';
import { resolveOptions } from './options';
import { RawActivitySettler, takeInventory } from './scanner';
import { StabilityGate } from './stability-gate';
import { FailureReason, JourneyHistory, JourneySteps, RetryPolicy } from '../../lib/journey';
import {
  AckResult,
  errCode,
  errText,
  FileRef,
  fileId,
  FolderWatcherOptions,
  fullPathOf,
  JourneyHistoryRecord,
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
  /** A journey's record changed, or a file entered or left the stability gate: its (journey) id. */
  on(event: 'journey', listener: (id: string) => void): this;
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
  private readonly journeyLog: Journeys;

  private phase: WatcherPhase = 'starting';
  private started = false;
  private closed = false;

  /** Zero-byte files that held still: wait for content (or are sent, with emitEmptyFiles). */
  private readonly emptyWaiting = new Map<string, number>();
  /** Files in the folder, as last seen. */
  private readonly present = new Set<string>();

  private watcher: FSWatcher | null = null;
  private eventsPaused = false;
  private rootId: string | null = null;
  private probeTimer: NodeJS.Timeout | null = null;
  private scanTimer: NodeJS.Timeout | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private probing: Promise<void> | null = null;
  private scanning: Promise<void> | null = null;
  private scanQueued: ScanKind | null = null;
  private initialScanDone = false;

  private counts = { recovered: 0, errors: 0 };
  /** When a file was last seen new or changed (Unix ms), since start. */
  private lastSeenAt: number | undefined;
  private lastProblem: Error | undefined;

  constructor(opts: FolderWatcherOptions) {
    super();
    const o = resolveOptions(opts);
    this.folder = o.folder;
    this.mode = o.mode;
    this.recursive = o.recursive;
    this.stabilityMs = o.stabilityMs;
    this.pollIntervalMs = o.pollIntervalMs;
    this.rescanIntervalMs = o.rescanIntervalMs;
    this.folderProbeMs = o.folderProbeMs;
    this.statConcurrency = o.statConcurrency;
    this.emitEmptyFiles = o.emitEmptyFiles;
    this.filters = o.filters;
    this.postAction = o.postAction;
    this.archiveFolder = o.archiveFolder;
    this.failedFolder = o.failedFolder;
    this.retryPolicy = o.retryPolicy;
    this.journeyLog = new Journeys(
      {
        folder: this.folder,
        ledgerFile: opts.ledgerFile,
        postAction: this.postAction,
        archiveFolder: this.archiveFolder,
        failedFolder: this.failedFolder,
        retryPolicy: this.retryPolicy,
        history: opts.historyDir ? new JourneyHistory<JourneyHistoryRecord>(opts.historyDir, 'journeys', o.retentionMs) : null,
        statConcurrency: this.statConcurrency,
      },
      {
        send: (file) => this.emit('file', file),
        // 'poll', not 'rescan': a rescan's finds count as files the events missed.
        changed: (rel, size, mtimeMs) => this.observe(rel, size, mtimeMs, 'poll'),
        movedAway: (rel) => this.present.delete(rel),
        back: (rel) => this.present.add(rel),
        statusChanged: () => this.statusChanged(),
        problem: (err) => this.reportProblem(err),
        journey: (id) => this.emit('journey', id),
      },
    );

    this.gate = new StabilityGate({
      stabilityMs: this.stabilityMs,
      statConcurrency: this.statConcurrency,
      emitEmptyFiles: this.emitEmptyFiles,
      fullPath: (rel) => this.fullPath(rel),
      onStable: (rel, size, mtimeMs, seenAt) => this.journeyLog.send(rel, size, mtimeMs, seenAt),
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
    this.journeyLog.open();
    this.probeTimer = setInterval(() => void this.probeRoot(), this.folderProbeMs);
    await this.probeRoot();
  }

  /** Stops watching, cancels timers and closes the ledger. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.gate.close();
    this.settler.close();
    this.journeyLog.stop();
    if (this.statusTimer) clearTimeout(this.statusTimer);
    for (const t of [this.probeTimer, this.scanTimer]) if (t) clearInterval(t);
    this.statusTimer = this.probeTimer = this.scanTimer = null;
    const w = this.watcher;
    this.watcher = null;
    if (w) await w.close().catch(() => undefined);
    // Let a scan or post-action in flight finish its current step before the ledger closes.
    await Promise.allSettled([this.scanning, this.probing, this.journeyLog.drain()]);
    this.journeyLog.close();
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
    return this.journeyLog.ack(ref, result);
  }

  /**
   * Sends a retrying or dead-lettered file again now, as a new attempt (a file moved to the failed
   * folder is moved back first). `unknown` when there is no such file; `already-done` for a done one.
   */
  retry(ref: FileRef | string): Promise<AckResult> {
    return this.journeyLog.retry(ref);
  }

  /** Marks a file done by hand (`by`: who), without processing it; it is not sent again. */
  skip(ref: FileRef | string, by: string): Promise<AckResult> {
    return this.journeyLog.skip(ref, by);
  }

  /** Adds what a node did (blob, processor, task) to a live journey, by its id. */
  note(journeyId: string, steps: JourneySteps): void {
    this.journeyLog.note(journeyId, steps);
  }

  /** Every live journey (files on their way, retrying, dead-lettered, done and still present). */
  *journeys(): IterableIterator<[string, LedgerEntry]> {
    yield* this.journeyLog.live();
  }

  /** Finished journeys kept for the retention period, newest first. */
  *finishedJourneys(): IterableIterator<JourneyHistoryRecord> {
    yield* this.journeyLog.finished();
  }

  /** Files waiting in the stability gate (not sent yet), with their would-be journey id. */
  pendingFiles(): Array<{ id: string; name: string; path: string; relativePath: string; size: number; mtimeMs: number; seenAt: number }> {
    return this.gate.files().map((f) => ({
      id: fileId(f.rel, f.size, f.mtimeMs),
      name: f.rel.slice(f.rel.lastIndexOf('/') + 1),
      path: this.fullPath(f.rel),
      relativePath: f.rel,
      size: f.size,
      mtimeMs: f.mtimeMs,
      seenAt: f.seenAt,
    }));
  }

  /** The finished journeys' store, for an index over it (null when none is kept). */
  historyStore(): JourneyHistory<JourneyHistoryRecord> | null {
    return this.journeyLog.historyStore;
  }

  /** When a file was last seen new or changed, and when a journey last reached done (Unix ms, since start). */
  activity(): { lastFileSeenAt?: number; lastDoneAt?: number } {
    return { lastFileSeenAt: this.lastSeenAt, lastDoneAt: this.journeyLog.lastDoneAt };
  }

  /** Test/diagnostic hook: while paused, file-system events are dropped (rescans still run). */
  setEventsPaused(paused: boolean): void {
    this.eventsPaused = paused;
  }

  /** The ledger's record for a file (relative path), for diagnostics. */
  ledgerEntry(relativePath: string): LedgerEntry | undefined {
    return this.journeyLog.get(relativePath);
  }

  getStatus(): WatcherStatus {
    const { awaitingAck, retrying, deadLettered } = this.journeyLog.summary();
    return {
      phase: this.phase,
      folder: this.folder,
      mode: this.mode,
      files: this.present.size,
      pending: this.gate.size,
      awaitingAck,
      retrying,
      deadLettered,
      ...this.journeyLog.counts,
      ...this.counts,
      lastProblem: this.lastProblem,
    };
  }

  // ---------------------------------------------------------------- paths

  private rel(abs: string): string {
    return relPath(this.folder, abs);
  }

  private fullPath(rel: string): string {
    return fullPathOf(this.folder, rel);
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
    if (this.closed || !this.journeyLog.isOpen) return;
    this.present.add(rel);
    // Already in the gate: a change starts its window again.
    if (this.gate.seen(rel, size, mtimeMs)) return;
    const entry = this.journeyLog.get(rel);
    if (entry && entry.size === size && entry.mtimeMs === mtimeMs) {
      if (entry.state === 'acked' && source !== 'event') void this.journeyLog.retryPostAction(rel);
      if (!this.journeyLog.awaitsResend(rel)) return;
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
    this.lastSeenAt = Date.now();
    this.emit('journey', fileId(rel, size, mtimeMs));
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
    if (!found || this.closed || !this.journeyLog.isOpen) return;
    if (kind === 'initial') this.initialScanDone = true;

    for (const [rel, s] of found) this.observe(rel, s.size, s.mtimeMs, kind);

    // Forget what is no longer there.
    for (const rel of [...this.present]) if (!found.has(rel) && !this.gate.isPending(rel) && !this.gate.isChecking(rel)) this.present.delete(rel);
    // Pending files are left to the gate: it drops those that vanished (a file reported by an
    // event while this scan ran is not in `found`, and must not be forgotten).
    for (const rel of [...this.emptyWaiting.keys()]) if (!found.has(rel)) this.emptyWaiting.delete(rel);
    this.journeyLog.sweep(found, scanStartedAt, kind);
    this.statusChanged();
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
