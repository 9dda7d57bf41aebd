/**
 * The watcher's durable ledger: one record per file (keyed by its path relative to the watched
 * folder) saying what was done with which version (size + mtime) of it. Backed by the shared
 * `Journal` when a file is given, else kept in memory (a watcher without memory across restarts).
 */
import { LabError } from '../../lib/http/errors';
import { Journal } from '../../lib/journal';
import type { JourneyRecord, JourneyState } from '../../lib/journey';

/** A ledger entry is a file's journey record (see lib/journey): state, attempts, failure, steps. */
export type LedgerState = JourneyState;
export type LedgerEntry = JourneyRecord;

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
  /** Journey id → relative path, for the nodes and the operator's view that name a journey by id. */
  private readonly byId = new Map<string, string>();

  /**
   * Opens the ledger for `folder`. A ledger written for another folder (the setting was changed)
   * is cleared: relative paths of one folder say nothing about another.
   */
  constructor(
    file: string | undefined,
    folder: string,
    /** Told the journey id of every record set or deleted (the operator's live view). */
    private readonly onChange: (id: string) => void = () => undefined,
  ) {
    this.journal = file ? openJournal(file) : null;
    const meta = this.raw(META_KEY) as LedgerMeta | undefined;
    if (!meta || meta.folder !== folder) {
      for (const k of [...this.keys()]) this.rawDelete(k);
      this.rawSet(META_KEY, { meta: 1, folder });
    }
    for (const [rel, e] of this.entries()) this.byId.set(e.id, rel);
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
    const prev = this.get(rel);
    if (prev && prev.id !== entry.id && this.byId.get(prev.id) === rel) this.byId.delete(prev.id);
    this.byId.set(entry.id, rel);
    this.rawSet(rel, entry);
    this.onChange(entry.id);
  }

  delete(rel: string): void {
    const prev = this.get(rel);
    if (prev && this.byId.get(prev.id) === rel) this.byId.delete(prev.id);
    this.rawDelete(rel);
    if (prev) this.onChange(prev.id);
  }

  /** The relative path of the live journey `id`. */
  relOf(id: string): string | undefined {
    return this.byId.get(id);
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
