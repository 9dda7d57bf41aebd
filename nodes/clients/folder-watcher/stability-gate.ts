/**
 * The stability gate: a file is passed on only after its size AND mtime held still for the
 * window. One timer for all pending files (kept in checkAt order), stats batched with bounded
 * concurrency. It decides; the watcher acts on its callbacks.
 */
import * as fs from 'fs';
import { errCode, mapLimit } from './types';

interface Pending {
  size: number;
  mtimeMs: number;
  /** When to stat it again; pending files are kept in checkAt order (Map insertion order). */
  checkAt: number;
}

export interface StabilityGateOptions {
  stabilityMs: number;
  statConcurrency: number;
  /** Send zero-byte files once they held still (otherwise: wait for content). */
  emitEmptyFiles: boolean;
  fullPath(rel: string): string;
  /** Size and mtime held still for the window: send it. */
  onStable(rel: string, size: number, mtimeMs: number, seenAt: number): void;
  /** The file is gone. */
  onVanished(rel: string): void;
  /** A zero-byte file held still (and emitEmptyFiles is off): wait for content. */
  onEmptyHeldStill(rel: string, mtimeMs: number): void;
  /** A batch of checks finished. */
  onChecked(): void;
  onProblem(err: unknown): void;
}

export class StabilityGate {
  /** Files in the stability gate, in checkAt order. */
  private readonly pending = new Map<string, Pending>();
  /** Files being statted by the gate right now; an event for one marks it dirty. */
  private readonly checking = new Set<string>();
  private readonly dirty = new Set<string>();
  /** Files in the gate: when each was first seen, and its size and mtime as last seen. */
  private readonly seenInfo = new Map<string, { seenAt: number; size: number; mtimeMs: number }>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private closed = false;

  constructor(private readonly opts: StabilityGateOptions) {}

  /** Files in the gate: waiting or being checked. */
  get size(): number {
    return this.pending.size + this.checking.size;
  }

  isPending(rel: string): boolean {
    return this.pending.has(rel);
  }

  isChecking(rel: string): boolean {
    return this.checking.has(rel);
  }

  /**
   * A file in the gate was seen with this size and mtime: a change starts its window again; one
   * seen while it is being checked is marked dirty (checked again). False when the gate does not
   * hold it.
   */
  seen(rel: string, size: number, mtimeMs: number): boolean {
    const p = this.pending.get(rel);
    if (p) {
      const info = this.seenInfo.get(rel);
      if (info) Object.assign(info, { size, mtimeMs });
      if (p.size !== size || p.mtimeMs !== mtimeMs) {
        this.pending.delete(rel);
        this.pending.set(rel, { size, mtimeMs, checkAt: Date.now() + this.opts.stabilityMs });
      }
      return true;
    }
    if (this.checking.has(rel)) {
      this.dirty.add(rel);
      return true;
    }
    return false;
  }

  /** Puts a file in the gate: checked once its window has passed. */
  add(rel: string, size: number, mtimeMs: number): void {
    const info = this.seenInfo.get(rel);
    if (info) Object.assign(info, { size, mtimeMs });
    else this.seenInfo.set(rel, { seenAt: Date.now(), size, mtimeMs });
    this.pending.set(rel, { size, mtimeMs, checkAt: Date.now() + this.opts.stabilityMs });
    this.arm();
  }

  /** Drops a waiting file (it was deleted). */
  delete(rel: string): void {
    this.pending.delete(rel);
    if (!this.checking.has(rel)) this.seenInfo.delete(rel);
  }

  /** The files in the gate (waiting or being checked): relative path, size, mtime, first seen. */
  files(): Array<{ rel: string; size: number; mtimeMs: number; seenAt: number }> {
    const out: Array<{ rel: string; size: number; mtimeMs: number; seenAt: number }> = [];
    for (const [rel, info] of this.seenInfo) if (this.pending.has(rel) || this.checking.has(rel)) out.push({ rel, ...info });
    return out;
  }

  /** Drops every waiting file (the backend is rebuilt; its scan finds them again). */
  clear(): void {
    this.pending.clear();
    for (const rel of [...this.seenInfo.keys()]) if (!this.checking.has(rel)) this.seenInfo.delete(rel);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    if (this.timer || this.running || this.closed) return;
    const first = this.pending.values().next();
    if (first.done) return;
    const delay = Math.max(0, first.value.checkAt - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run();
    }, delay);
  }

  private async run(): Promise<void> {
    if (this.closed) return;
    this.running = true;
    try {
      // Take every file that is due (plus a few ms, to batch the stats of a burst).
      const horizon = Date.now() + 15;
      const due: Array<[string, Pending]> = [];
      for (const [rel, p] of this.pending) {
        if (p.checkAt > horizon) break;
        due.push([rel, p]);
      }
      for (const [rel] of due) {
        this.pending.delete(rel);
        this.checking.add(rel);
      }
      await mapLimit(due, this.opts.statConcurrency, async ([rel, p]) => {
        try {
          await this.check(rel, p);
        } finally {
          this.checking.delete(rel);
          this.dirty.delete(rel);
          if (!this.pending.has(rel)) this.seenInfo.delete(rel);
        }
      });
    } catch (err) {
      this.opts.onProblem(err);
    } finally {
      this.running = false;
    }
    this.arm();
    this.opts.onChecked();
  }

  private async check(rel: string, p: Pending): Promise<void> {
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(this.opts.fullPath(rel));
    } catch (err) {
      if (this.closed) return;
      if (errCode(err) === 'ENOENT' || errCode(err) === 'ENOTDIR') {
        this.opts.onVanished(rel);
      } else {
        // e.g. EBUSY / EACCES while an instrument holds it: look again after another window.
        this.pending.set(rel, { ...p, checkAt: Date.now() + this.opts.stabilityMs });
      }
      return;
    }
    if (this.closed || !st.isFile()) return;
    if (this.dirty.has(rel) || st.size !== p.size || st.mtimeMs !== p.mtimeMs) {
      this.pending.set(rel, { size: st.size, mtimeMs: st.mtimeMs, checkAt: Date.now() + this.opts.stabilityMs });
      const info = this.seenInfo.get(rel);
      if (info) Object.assign(info, { size: st.size, mtimeMs: st.mtimeMs });
      return;
    }
    if (st.size === 0 && !this.opts.emitEmptyFiles) {
      this.opts.onEmptyHeldStill(rel, st.mtimeMs);
      return;
    }
    this.opts.onStable(rel, st.size, st.mtimeMs, this.seenInfo.get(rel)?.seenAt ?? Date.now());
  }
}
