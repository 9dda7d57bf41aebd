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

export interface JournalOptions {
  /** fsync the file at most this often while it has unsynced writes (0 = after every write). */
  fsyncIntervalMs?: number;
  /** Compact when the file holds more than this many records beyond twice the live ones. */
  compactSlack?: number;
}

export class Journal<V> {
  private readonly map = new Map<string, V>();
  private fd: number | null = null;
  private records = 0;
  private dirty = false;
  private syncTimer: NodeJS.Timeout | null = null;
  private readonly fsyncIntervalMs: number;
  private readonly compactSlack: number;

  private constructor(readonly file: string, opts: JournalOptions) {
    this.fsyncIntervalMs = opts.fsyncIntervalMs ?? 1000;
    this.compactSlack = opts.compactSlack ?? 1000;
  }

  /** Opens (creating folders as needed) and replays the journal at `file`. */
  static open<V>(file: string, opts: JournalOptions = {}): Journal<V> {
    const j = new Journal<V>(file, opts);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    j.load();
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
    this.closeFd();
  }
}

/** Where a node keeps its durable state: `<userDir>/labwire-state/<kind>-<node id>.jsonl`. */
export function stateFilePath(userDir: string | undefined, kind: string, nodeId: string): string {
  const base = userDir || process.cwd();
  const safeId = nodeId.replace(/[^A-Za-z0-9_.-]/g, '_');
  return path.join(base, 'labwire-state', `${kind}-${safeId}.jsonl`);
}
