/**
 * The watcher's durable ledger: one record per file (keyed by its path relative to the watched
 * folder) saying what was done with which version (size + mtime) of it. Backed by the shared
 * `Journal` when a file is given, else kept in memory (a watcher without memory across restarts).
 */
import { LabError } from '../../lib/http/errors';
import { Journal } from '../../lib/journal';

/**
 * `emitted`: sent on, not acknowledged yet (sent again after a restart).
 * `acked`:   acknowledged; the post-action (move/delete) has not completed yet (retried).
 * `done`:    acknowledged and post-processed; never sent again unless its size/mtime change.
 * `failed`:  the flow reported a failure; kept in place, not sent again until it changes or the
 *            watcher restarts.
 */
export type LedgerState = 'emitted' | 'acked' | 'done' | 'failed';

export interface LedgerEntry {
  size: number;
  mtimeMs: number;
  state: LedgerState;
  /** Identifies this version of the file: hash of relative path, size and mtime. */
  id: string;
  /** How often this version was sent (1 = once; more after restarts without an ack). */
  emitCount: number;
  emittedAt: number;
  ackedAt?: number;
  doneAt?: number;
  error?: string;
  archivedTo?: string;
}

interface LedgerMeta {
  meta: 1;
  folder: string;
}

type Row = LedgerEntry | LedgerMeta;

const META_KEY = ''; // a relative path is never empty

function isEntry(v: Row | undefined): v is LedgerEntry {
  return !!v && (v as LedgerEntry).state !== undefined;
}

export class Ledger {
  private readonly journal: Journal<Row> | null;
  private readonly memory = new Map<string, Row>();

  /**
   * Opens the ledger for `folder`. A ledger written for another folder (the setting was changed)
   * is cleared: relative paths of one folder say nothing about another.
   */
  constructor(file: string | undefined, folder: string) {
    this.journal = file ? openJournal(file) : null;
    const meta = this.raw(META_KEY) as LedgerMeta | undefined;
    if (!meta || meta.folder !== folder) {
      for (const k of [...this.keys()]) this.rawDelete(k);
      this.rawSet(META_KEY, { meta: 1, folder });
    }
  }

  private raw(key: string): Row | undefined {
    return this.journal ? this.journal.get(key) : this.memory.get(key);
  }

  private rawSet(key: string, v: Row): void {
    if (this.journal) this.journal.set(key, v);
    else this.memory.set(key, v);
  }

  private rawDelete(key: string): void {
    if (this.journal) this.journal.delete(key);
    else this.memory.delete(key);
  }

  private *keys(): IterableIterator<string> {
    const it = this.journal ? this.journal.entries() : this.memory.entries();
    for (const [k] of it) yield k;
  }

  get(rel: string): LedgerEntry | undefined {
    const v = this.raw(rel);
    return isEntry(v) ? v : undefined;
  }

  set(rel: string, entry: LedgerEntry): void {
    this.rawSet(rel, entry);
  }

  delete(rel: string): void {
    this.rawDelete(rel);
  }

  *entries(): IterableIterator<[string, LedgerEntry]> {
    const it = this.journal ? this.journal.entries() : this.memory.entries();
    for (const [k, v] of it) if (k !== META_KEY && isEntry(v)) yield [k, v];
  }

  close(): void {
    this.journal?.close();
  }
}

/** The journal at `file`, or a clear error naming it (e.g. the state folder is not writable). */
function openJournal(file: string): Journal<Row> {
  try {
    return Journal.open<Row>(file);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new LabError('UNAVAILABLE', 'folder.cannotOpenLedger', { file, reason }, { cause: err });
  }
}
