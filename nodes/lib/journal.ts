/**
 * Durable key/value state that survives a crash of Node-RED (kill -9).
 *
 * Every change is one JSON line appended with a synchronous write, so it is in the operating
 * system's page cache before the call returns: a killed process loses nothing it was told about.
 * A torn last line (killed mid-write) is skipped on load. The file is compacted (temp file, fsync,
 * rename) when dead records outnumber live ones. `fsync` batching adds power-loss safety at a
 * bounded cost.
 */
import * as fs from 'fs';
import * as path from 'path';

interface JournalRecord<V> {
  k: string;
  v?: V;
  d?: 1;
}

export interface JournalOptions<V = unknown> {
  /** fsync the file at most this often while it has unsynced writes (0 = after every write). */
  fsyncIntervalMs?: number;
  /** Compact when the file holds more than this many records beyond twice the live ones. */
  compactSlack?: number;
  /**
   * Records older than `maxAgeMs` are dropped when the journal is opened and once a day after.
   * `timeOf` gives a record's time (ms since the epoch); `undefined` keeps the record whatever its age.
   */
  retention?: { maxAgeMs: number; timeOf: (value: V) => number | undefined };
}

const DAY_MS = 24 * 60 * 60 * 1000;

export class Journal<V> {
  private readonly map = new Map<string, V>();
  private fd: number | null = null;
  private records = 0;
  private dirty = false;
  private syncTimer: NodeJS.Timeout | null = null;
  private retentionTimer: NodeJS.Timeout | null = null;
  private readonly fsyncIntervalMs: number;
  private readonly compactSlack: number;

  private constructor(readonly file: string, opts: JournalOptions<V>) {
    this.fsyncIntervalMs = opts.fsyncIntervalMs ?? 1000;
    this.compactSlack = opts.compactSlack ?? 1000;
  }

  /** Opens (creating folders as needed) and replays the journal at `file`. */
  static open<V>(file: string, opts: JournalOptions<V> = {}): Journal<V> {
    const j = new Journal<V>(file, opts);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    j.load();
    const r = opts.retention;
    if (r) {
      j.dropOlderThan(Date.now() - r.maxAgeMs, r.timeOf); // the compaction below writes the result
      j.retentionTimer = setInterval(() => j.pruneOlderThan(r.maxAgeMs, r.timeOf), DAY_MS);
      j.retentionTimer.unref();
    }
    j.compact();
    return j;
  }

  private load(): void {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      let rec: JournalRecord<V>;
      try {
        rec = JSON.parse(line);
      } catch {
        continue; // a line torn by a crash mid-write: the change it carried was never acknowledged
      }
      if (typeof rec.k !== 'string') continue;
      if (rec.d) this.map.delete(rec.k);
      else this.map.set(rec.k, rec.v as V);
    }
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  entries(): IterableIterator<[string, V]> {
    return this.map.entries();
  }

  set(key: string, value: V): void {
    this.map.set(key, value);
    this.append({ k: key, v: value });
  }

  delete(key: string): void {
    if (!this.map.delete(key)) return;
    this.append({ k: key, d: 1 });
  }

  /**
   * Deletes the records whose time (`timeOf`) is more than `maxAgeMs` before `now`; records
   * without a time are kept. Returns how many were deleted.
   */
  pruneOlderThan(maxAgeMs: number, timeOf: (value: V) => number | undefined, now = Date.now()): number {
    let buf = '';
    const n = this.dropOlderThan(now - maxAgeMs, timeOf, (k) => {
      buf += JSON.stringify({ k, d: 1 }) + '\n';
      if (buf.length > 1 << 20) {
        this.write(buf);
        buf = '';
      }
    });
    if (buf) this.write(buf);
    if (n) {
      this.records += n;
      this.scheduleSync();
      if (this.records > 2 * this.map.size + this.compactSlack) this.compact();
    }
    return n;
  }

  private dropOlderThan(limit: number, timeOf: (value: V) => number | undefined, onDrop?: (key: string) => void): number {
    let n = 0;
    for (const [k, v] of this.map) {
      const at = timeOf(v);
      if (at === undefined || !(at < limit)) continue;
      this.map.delete(k);
      onDrop?.(k);
      n++;
    }
    return n;
  }

  private write(text: string): void {
    if (this.fd === null) this.fd = fs.openSync(this.file, 'a');
    fs.writeSync(this.fd, text);
  }

  private append(rec: JournalRecord<V>): void {
    if (this.fd === null) this.fd = fs.openSync(this.file, 'a');
    fs.writeSync(this.fd, JSON.stringify(rec) + '\n');
    this.records++;
    this.scheduleSync();
    if (this.records > 2 * this.map.size + this.compactSlack) this.compact();
  }

  private scheduleSync(): void {
    this.dirty = true;
    if (this.fsyncIntervalMs === 0) return this.sync();
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      this.sync();
    }, this.fsyncIntervalMs);
    this.syncTimer.unref();
  }

  private sync(): void {
    if (!this.dirty || this.fd === null) return;
    this.dirty = false;
    fs.fsyncSync(this.fd);
  }

  /** Rewrites the file with only the live records. */
  compact(): void {
    this.closeFd();
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      let buf = '';
      for (const [k, v] of this.map) {
        buf += JSON.stringify({ k, v }) + '\n';
        if (buf.length > 1 << 20) {
          fs.writeSync(fd, buf);
          buf = '';
        }
      }
      if (buf) fs.writeSync(fd, buf);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
    this.records = this.map.size;
  }

  private closeFd(): void {
    if (this.syncTimer) {
      clearTimeout(this.syncTimer);
      this.syncTimer = null;
    }
    if (this.fd !== null) {
      this.sync();
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }

  close(): void {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    this.retentionTimer = null;
    this.closeFd();
  }
}

/** A record time given as ms or as an ISO string, for `timeOf`. */
export function timeOfValue(at: number | string | undefined): number | undefined {
  if (typeof at === 'number') return at;
  if (typeof at !== 'string') return undefined;
  const ms = Date.parse(at);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Default retention of the nodes' journals: 30 days. */
export const DEFAULT_RETENTION_MS = 30 * DAY_MS;

/** Where a node keeps its durable state: `<userDir>/labwire-state/<kind>-<node id>.jsonl`. */
export function stateFilePath(userDir: string | undefined, kind: string, nodeId: string): string {
  const base = userDir || process.cwd();
  const safeId = nodeId.replace(/[^A-Za-z0-9_.-]/g, '_');
  return path.join(base, 'labwire-state', `${kind}-${safeId}.jsonl`);
}

/** The kinds of state file named after their node (stateFilePath(…, kind, node.id)). */
export const NODE_STATE_KINDS = ['watch-folder', 'benchling-upload-blob', 'benchling-create-processor', 'ot2-run', 'bioaf-webhook-verify'] as const;

/**
 * Removes a deleted node's durable state: `<kind>-<id>.jsonl` of every kind, a compaction's
 * leftover temp files, and a watch folder's history. Returns the paths removed. Files of other
 * nodes, and the tenant-wide rate-limit files, are never touched.
 */
export function removeNodeState(userDir: string | undefined, nodeId: string): string[] {
  const removed: string[] = [];
  for (const kind of NODE_STATE_KINDS) {
    const file = stateFilePath(userDir, kind, nodeId);
    const dir = path.dirname(file);
    const base = path.basename(file);
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return removed; // no labwire-state folder: nothing to remove
    }
    for (const name of names) {
      if (name === base || (name.startsWith(`${base}.`) && name.endsWith('.tmp'))) {
        fs.rmSync(path.join(dir, name), { force: true });
        removed.push(path.join(dir, name));
      }
    }
    const history = path.join(dir, 'history', path.basename(file, '.jsonl'));
    if (fs.existsSync(history)) {
      fs.rmSync(history, { recursive: true, force: true });
      removed.push(history);
    }
  }
  return removed;
}
