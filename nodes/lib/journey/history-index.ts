/**
 * An index over one watcher's history (JourneyHistory day files) for the operator's view, so a page
 * of the newest finished files costs a few small reads however long the history is:
 *
 * - a tail reader that reads a day file backwards in 64 KiB chunks from a byte offset, so a page
 *   position is (day, offset) and never depends on how many records came before it;
 * - finished journeys counted per day (done / not done), once, lazily in the background (one day
 *   file at a time, the event loop free in between), then kept incrementally from the history's
 *   appends; days pruned from disk drop out of the counts.
 */
import * as fs from 'fs';
import type { JourneyHistory } from './history';

const CHUNK = 64 * 1024;

/** A history line read backwards: the raw text, the day, and where its bytes lie in the day file. */
export interface HistoryLine {
  raw: string;
  day: string;
  /** Byte offset the line starts at. */
  start: number;
  /** Byte offset just past the line (its newline included). */
  end: number;
}

/** A position in the history: the lines of `day` that end at or before `end`, then older days. */
export interface HistoryPos {
  day: string;
  end: number;
}

export interface DayCounts {
  done: number;
  /** Journeys that ended without done (the file went away while failed, retrying or on its way). */
  failed: number;
}

function readChunk(file: string, pos: number, size: number): Buffer | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const buf = Buffer.allocUnsafe(size);
    const n = fs.readSync(fd, buf, 0, size, pos);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** The lines of `file` that end at or before byte `end`, last first. */
export function* linesBackward(file: string, day: string, end: number): IterableIterator<HistoryLine> {
  let pos = end;
  let rest: Buffer = Buffer.alloc(0);
  // Bytes after the last newline before `end` are a line still being written: it is not read.
  let lineEnd = -1;
  while (pos > 0) {
    const size = Math.min(CHUNK, pos);
    pos -= size;
    const chunk = readChunk(file, pos, size);
    if (!chunk || chunk.length < size) return; // the file shrank (pruned): nothing more here
    const data = rest.length ? Buffer.concat([chunk, rest]) : chunk;
    let stop = data.length;
    if (lineEnd < 0) {
      // The first read: skip to the newline that ends the last complete line.
      const nl = data.lastIndexOf(10);
      if (nl < 0) continue; // all of it belongs to the unfinished line
      stop = nl;
      lineEnd = 0;
    }
    for (let i = stop - 1; i >= 0; i--) {
      if (data[i] !== 10) continue;
      if (i + 1 < stop) yield { raw: data.toString('utf8', i + 1, stop), day, start: pos + i + 1, end: pos + stop + 1 };
      stop = i;
    }
    rest = data.subarray(0, stop);
  }
  if (lineEnd >= 0 && rest.length) yield { raw: rest.toString('utf8'), day, start: 0, end: rest.length + 1 };
}

const DONE_MARKER = '"state":"done"';

/** Whether a history line's record is done (the history writes `"state":"done"` for those). */
export function lineIsDone(raw: string): boolean {
  return raw.includes(DONE_MARKER);
}

const DONE_BYTES = Buffer.from(DONE_MARKER);
const NEWLINE = 0x0a;

/**
 * Counts a day file's finished journeys as `lineIsDone` would, line by line, without turning the
 * file into text: one 64 KiB buffer reused (grown only for a longer line), so counting a long
 * history at start-up does not leave megabytes of strings for the GC. Synchronous, so no append
 * lands between the reads; bytes after the last newline (a line being written) are not counted.
 * Throws when the file cannot be opened.
 */
export function countDayFile(file: string): DayCounts {
  const c: DayCounts = { done: 0, failed: 0 };
  const fd = fs.openSync(file, 'r');
  try {
    let buf = Buffer.allocUnsafe(CHUNK);
    let kept = 0; // bytes of an unfinished line at the start of buf
    for (;;) {
      if (kept === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, kept);
        buf = bigger;
      }
      const n = fs.readSync(fd, buf, kept, buf.length - kept, null);
      if (n === 0) break;
      const view = buf.subarray(0, kept + n);
      let from = 0;
      // The next marker at or after `from`, searched once per stretch of bytes, not once per line.
      let marker = view.indexOf(DONE_BYTES, 0);
      for (;;) {
        const nl = view.indexOf(NEWLINE, from);
        if (nl < 0) break;
        if (nl > from) {
          if (marker >= 0 && marker < from) marker = view.indexOf(DONE_BYTES, from);
          if (marker >= from && marker + DONE_BYTES.length <= nl) c.done++;
          else c.failed++;
        }
        from = nl + 1;
      }
      kept = view.length - from;
      buf.copy(buf, 0, from, view.length);
    }
  } finally {
    fs.closeSync(fd);
  }
  return c;
}

export class HistoryIndex {
  private readonly perDay = new Map<string, DayCounts>();
  /** Days listed for the first count and not read yet: their appends are counted when they are read. */
  private readonly uncounted = new Set<string>();
  private counting: Promise<void> | null = null;
  private counted = false;
  private readonly unsubscribe: () => void;

  constructor(readonly history: JourneyHistory<object>) {
    this.unsubscribe = history.onAppend((rec, day) => this.appended(day, (rec as { state?: string }).state === 'done'));
  }

  private appended(day: string, done: boolean): void {
    if (this.uncounted.has(day)) return; // read whole later
    if (!this.counting) return; // not counting yet: the first count reads it
    const c = this.perDay.get(day) ?? { done: 0, failed: 0 };
    if (done) c.done++;
    else c.failed++;
    this.perDay.set(day, c);
  }

  /** Starts counting the history (once); resolves when the counts are complete. */
  ready(): Promise<void> {
    if (!this.counting) this.counting = this.countAll();
    return this.counting;
  }

  get isReady(): boolean {
    return this.counted;
  }

  private async countAll(): Promise<void> {
    const days = this.history.dayFiles();
    for (const d of days) this.uncounted.add(d.day);
    for (const d of days) {
      await new Promise<void>((r) => setImmediate(r));
      // Read in one synchronous step: no append can land between the read and the count.
      let c: DayCounts;
      try {
        c = countDayFile(d.file);
      } catch {
        c = { done: 0, failed: 0 }; // pruned meanwhile
      }
      this.uncounted.delete(d.day);
      this.perDay.set(d.day, c);
    }
    this.counted = true;
  }

  /** Finished journeys by outcome over the days still on disk (complete once `ready` resolved). */
  counts(): DayCounts {
    const onDisk = new Set(this.history.dayFiles().map((d) => d.day));
    const out: DayCounts = { done: 0, failed: 0 };
    for (const [day, c] of this.perDay) {
      if (!onDisk.has(day)) {
        this.perDay.delete(day);
        continue;
      }
      out.done += c.done;
      out.failed += c.failed;
    }
    return out;
  }

  /** Where the newest line ends: the start of a listing. */
  newest(): HistoryPos | null {
    const days = this.history.dayFiles();
    if (!days.length) return null;
    let size = 0;
    try {
      size = fs.statSync(days[0].file).size;
    } catch {
      /* pruned */
    }
    return { day: days[0].day, end: size };
  }

  /** Lines newest first from `pos` (inclusive of lines ending at or before it), across older days. */
  *from(pos: HistoryPos): IterableIterator<HistoryLine> {
    const days = this.history.dayFiles();
    for (const d of days) {
      if (d.day > pos.day) continue;
      let end: number;
      if (d.day === pos.day) end = pos.end;
      else {
        try {
          end = fs.statSync(d.file).size;
        } catch {
          continue;
        }
      }
      yield* linesBackward(d.file, d.day, end);
    }
  }

  close(): void {
    this.unsubscribe();
  }
}

const indexes = new WeakMap<object, HistoryIndex>();

/** The one index of a history store. */
export function historyIndex(history: JourneyHistory<object>): HistoryIndex {
  let ix = indexes.get(history);
  if (!ix) {
    ix = new HistoryIndex(history);
    indexes.set(history, ix);
  }
  return ix;
}
