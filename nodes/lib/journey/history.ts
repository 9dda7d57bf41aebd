/**
 * Finished journeys, kept for a retention period and never loaded at start-up: one JSON-lines file
 * per UTC day (`<prefix>-YYYY-MM-DD.jsonl`), appended synchronously (a killed process loses nothing
 * it was told about), read newest first on demand, and pruned a whole day at a time. So start-up
 * time and memory do not grow with history; only the disk does, for `retentionMs`.
 */
import * as fs from 'fs';
import * as path from 'path';

const DAY_MS = 24 * 3600_000;
export const DEFAULT_RETENTION_MS = 30 * DAY_MS;

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export class JourneyHistory<R extends object = Record<string, unknown>> {
  private fd: number | null = null;
  private fdDay = '';
  private readonly re: RegExp;
  private readonly appendListeners = new Set<(rec: R, day: string, offset: number) => void>();

  constructor(
    readonly dir: string,
    readonly prefix: string,
    readonly retentionMs = DEFAULT_RETENTION_MS,
  ) {
    this.re = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d{4}-\\d{2}-\\d{2})\\.jsonl$`);
  }

  /** Appends a finished journey to today's file. */
  append(rec: R, now = Date.now()): void {
    const d = day(now);
    if (this.fd === null || this.fdDay !== d) {
      this.closeFd();
      fs.mkdirSync(this.dir, { recursive: true });
      this.fd = fs.openSync(path.join(this.dir, `${this.prefix}-${d}.jsonl`), 'a');
      this.fdDay = d;
    }
    const line = JSON.stringify(rec) + '\n';
    const offset = fs.fstatSync(this.fd).size;
    fs.writeSync(this.fd, line);
    for (const fn of this.appendListeners) {
      try {
        fn(rec, d, offset);
      } catch {
        /* a listener's problem is not the history's */
      }
    }
  }

  /** Called after each append with the record, its day and the byte offset its line starts at; returns the unsubscribe function. */
  onAppend(fn: (rec: R, day: string, offset: number) => void): () => void {
    this.appendListeners.add(fn);
    return () => this.appendListeners.delete(fn);
  }

  /** The file of a day (`YYYY-MM-DD`). */
  fileOf(dayName: string): string {
    return path.join(this.dir, `${this.prefix}-${dayName}.jsonl`);
  }

  /** The day files, newest first (`day` is `YYYY-MM-DD`). */
  dayFiles(): Array<{ day: string; file: string }> {
    return this.days();
  }

  /** The day files, newest first. */
  private days(): Array<{ day: string; file: string }> {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: Array<{ day: string; file: string }> = [];
    for (const n of names) {
      const m = this.re.exec(n);
      if (m) out.push({ day: m[1], file: path.join(this.dir, n) });
    }
    return out.sort((a, b) => (a.day < b.day ? 1 : -1));
  }

  /** Deletes the days that lie wholly before the retention period; returns how many files went. */
  prune(now = Date.now()): number {
    const oldest = day(now - this.retentionMs);
    let n = 0;
    for (const d of this.days()) {
      if (d.day >= oldest) continue;
      if (d.file === path.join(this.dir, `${this.prefix}-${this.fdDay}.jsonl`)) this.closeFd();
      try {
        fs.unlinkSync(d.file);
        n++;
      } catch {
        /* gone already, or locked (Windows): tried again at the next prune */
      }
    }
    return n;
  }

  /** Finished journeys, newest first (one day file in memory at a time); a torn line is skipped. */
  *newestFirst(): IterableIterator<R> {
    for (const d of this.days()) {
      let text: string;
      try {
        text = fs.readFileSync(d.file, 'utf8');
      } catch {
        continue;
      }
      const lines = text.split('\n');
      for (let i = lines.length - 1; i >= 0; i--) {
        if (!lines[i]) continue;
        try {
          yield JSON.parse(lines[i]) as R;
        } catch {
          /* torn by a crash mid-write */
        }
      }
    }
  }

  private closeFd(): void {
    if (this.fd !== null) {
      try {
        fs.closeSync(this.fd);
      } catch {
        /* already closed */
      }
      this.fd = null;
      this.fdDay = '';
    }
  }

  close(): void {
    this.closeFd();
  }
}
