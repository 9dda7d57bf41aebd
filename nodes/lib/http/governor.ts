/**
 * A per-tenant request governor. Every client that talks to one tenant (one Benchling URL and
 * credential) shares one governor, so all the nodes of a flow together stay under the tenant's
 * limit instead of each discovering it through 429s.
 *
 * Three sources of truth, whichever is strictest: our own sliding window (the documented default
 * for Benchling is 60 requests per 30 s); the tenant-wide window the server reports in every
 * answer's `x-rate-limit-*` headers, which other processes (other lab PCs) spend too — paced by
 * the policy in rate-policy.ts; and, when the tenant is set up with one, a token bucket in Redis
 * shared by all the tenant's Node-REDs (redis-bucket.ts), which replaces the header pacing while
 * Redis answers and falls back to it (saying so) when it does not.
 *
 * Restart-safe with a state file: the server's window does not restart with Node-RED, so a window
 * kept only in memory starts empty after a restart and bursts into 429s. Each send time (and each
 * block after a 429) is appended to the file with a synchronous write, so a killed process has
 * told it everything; a new process loads the times still inside the window and waits for them.
 * The file is rewritten with only the live window now and then, so it stays a few KB.
 */
import * as fs from 'fs';
import * as path from 'path';
import { LabError } from './errors';
import { cancelled, sleep } from '../timing';
import { countedWait } from '../metrics';
import { bulkLimit, HeaderPacer, readRateHeaders, type PacingMode } from './rate-policy';

export { bulkLimit };
import type { RedisBucket } from './redis-bucket';

export interface GovernorOptions {
  /** Requests allowed per window. 0 or less disables our own window (headers still apply). */
  limit: number;
  windowMs: number;
  /** Where the spent window is kept across restarts (none: memory only). */
  stateFile?: string;
  /** Told once when the state file cannot be used; the governor then goes on in memory. */
  onStateError?: (err: LabError) => void;
  /** A budget shared by all processes of the tenant (Redis); none: header-aware pacing. */
  shared?: RedisBucket;
  /** Told when the shared budget fails (a LabError) and when it is back (undefined). */
  onSharedProblem?: (err: LabError | undefined) => void;
}

// Waits are re-checked at least this often: new answers (or the shared budget coming back) may
// shorten them.
const MAX_NAP_MS = 1000;

// Requests are counted when sent but the server counts them when they arrive; a small margin
// keeps a burst at the edge of a window from landing 61 in the server's.
const WINDOW_MARGIN_MS = 250;

// Lines are `s <ms>` (a request sent) and `b <ms>` (blocked until). A torn last line (killed
// mid-write) fails the pattern or the range check below and is skipped.
const LINE = /^([sb]) (\d{13})$/;
// A time further ahead than this is not ours (a torn line, a clock jump): ignored.
const MAX_AHEAD_MS = 60 * 60_000;

/**
 * What a request is, for its turn: `interactive` (polls, creates, look-ups: someone waits on the
 * answer) or `bulk` (blob parts: a 1 GiB file is ~110 of them). Bulk requests let every waiting
 * interactive one go first, and leave a share of our window to interactive ones (BULK_RESERVE),
 * so one big upload under the tenant's limit does not hold back the polls of every other file.
 */
export type RequestClass = 'interactive' | 'bulk';

export class RateGovernor {
  private readonly sent: number[] = [];
  private blockedUntil = 0;
  private queue: Promise<void> = Promise.resolve();
  private bulkQueue: Promise<void> = Promise.resolve();
  private interactiveWaiting = 0;
  private interactiveIdle: Array<() => void> = [];
  private stateFile?: string;
  private linesInFile = 0;
  /** Set while requests wait for the rate limit; nodes show it in their status. */
  waiting = 0;
  private readonly pacer: HeaderPacer;
  private sharedProblem?: LabError;
  private nudge!: { promise: Promise<void>; resolve: () => void };

  constructor(private opts: GovernorOptions) {
    this.pacer = new HeaderPacer(opts.windowMs, opts.limit > 0 ? opts.limit : 60);
    this.renewNudge();
    if (opts.stateFile) this.attach(opts.stateFile);
  }

  configure(opts: GovernorOptions): void {
    this.opts = opts;
    this.pacer.configure(opts.windowMs, opts.limit > 0 ? opts.limit : 60);
    if (!opts.shared) this.setSharedProblem(undefined);
    // A redeploy may point it elsewhere (another user directory); a failed file is tried again.
    if (opts.stateFile && opts.stateFile !== this.stateFile) this.attach(opts.stateFile);
  }

  /** Loads what a previous process spent in the current window, then keeps the file up to date. */
  private attach(file: string): void {
    this.stateFile = file;
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return this.stateFailed(err);
    }
    const now = Date.now();
    const oldest = now - this.span();
    const loaded: number[] = [];
    for (const line of text.split('\n')) {
      const m = LINE.exec(line);
      if (!m) continue;
      const t = Number(m[2]);
      if (t > now + MAX_AHEAD_MS) continue;
      if (m[1] === 'b') this.blockedUntil = Math.max(this.blockedUntil, t);
      else if (t > oldest && t <= now) loaded.push(t);
    }
    // Merged with what this process already counted: a file attached again holds some of the
    // same sends, and several sends can share a millisecond, so each time counts as often as the
    // larger of the two lists has it.
    const count = (list: number[]) => list.reduce((m, t) => m.set(t, (m.get(t) ?? 0) + 1), new Map<number, number>());
    const mine = count(this.sent);
    for (const [t, n] of count(loaded)) mine.set(t, Math.max(n, mine.get(t) ?? 0));
    const merged = [...mine].flatMap(([t, n]) => Array<number>(n).fill(t)).sort((a, b) => a - b);
    this.sent.splice(0, this.sent.length, ...merged);
    this.compact();
  }

  private span(): number {
    return this.opts.windowMs + WINDOW_MARGIN_MS;
  }

  private persist(kind: 's' | 'b', time: number): void {
    if (!this.stateFile) return;
    try {
      fs.appendFileSync(this.stateFile, `${kind} ${time}\n`);
    } catch (err) {
      return this.stateFailed(err);
    }
    // At most `limit` sends per window: rewriting after ~2 windows' worth keeps the file tiny.
    if (++this.linesInFile > 2 * Math.max(this.opts.limit, 16)) this.compact();
  }

  /** Rewrites the file with only the live window (temp file + rename: never half a file). */
  private compact(): void {
    const file = this.stateFile;
    if (!file) return;
    const now = Date.now();
    const live = this.sent.filter((t) => t > now - this.span());
    const lines = live.map((t) => `s ${t}\n`);
    if (this.blockedUntil > now) lines.push(`b ${this.blockedUntil}\n`);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(tmp, lines.join(''));
      fs.renameSync(tmp, file);
      this.linesInFile = lines.length;
    } catch (err) {
      try {
        fs.rmSync(tmp, { force: true });
      } catch {
        /* nothing was written there */
      }
      this.stateFailed(err);
    }
  }

  /** Never stops requests: the governor goes on in memory, and says so once. */
  private stateFailed(err: unknown): void {
    const file = this.stateFile;
    this.stateFile = undefined;
    this.opts.onStateError?.(new LabError('BAD_INPUT', 'http.rateStateUnusable', { file: String(file), reason: (err as Error).message }));
  }

  /**
   * Resolves when one more request may be sent now. Callers of a class are served in order;
   * waiting interactive requests go before waiting bulk ones (see RequestClass).
   */
  acquire(signal?: AbortSignal, cls: RequestClass = 'interactive'): Promise<void> {
    const bulk = cls === 'bulk';
    if (!bulk) this.interactiveWaiting++;
    const turn = (bulk ? this.bulkQueue : this.queue).then(() => this.waitForSlot(signal, bulk));
    // A cancelled waiter must not block the ones behind it.
    const next = turn.catch(() => undefined);
    if (bulk) this.bulkQueue = next;
    else {
      this.queue = next;
      void next.then(() => {
        if (--this.interactiveWaiting === 0) for (const wake of this.interactiveIdle.splice(0)) wake();
      });
    }
    return turn;
  }

  /** Resolves once no interactive request waits (at once when none does). */
  private interactiveDone(signal?: AbortSignal): Promise<void> {
    if (this.interactiveWaiting === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(cancelled(signal));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.interactiveIdle.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  private async waitForSlot(signal?: AbortSignal, bulk = false): Promise<void> {
    this.waiting++;
    try {
      for (;;) {
        if (bulk && this.interactiveWaiting > 0) {
          await countedWait(this.interactiveDone(signal));
          continue;
        }
        const now = Date.now();
        const { windowMs } = this.opts;
        const limit = bulk ? bulkLimit(this.opts.limit) : this.opts.limit;
        const span = windowMs + WINDOW_MARGIN_MS;
        while (this.sent.length && this.sent[0] <= now - span) this.sent.shift();
        let wait = this.blockedUntil - now;
        // The oldest send whose leaving the window frees a slot for this class.
        if (limit > 0 && this.sent.length >= limit) wait = Math.max(wait, this.sent[this.sent.length - limit] + span - now);
        if (wait <= 0) wait = await this.budgetWait(now, bulk);
        if (wait <= 0) {
          this.sent.push(now);
          this.persist('s', now);
          this.pacer.sent(now);
          return;
        }
        await countedWait(Promise.race([sleep(Math.min(wait, MAX_NAP_MS), signal), this.nudge.promise]));
      }
    } finally {
      this.waiting--;
    }
  }

  /**
   * The tenant-wide budget: the shared Redis bucket while it answers (a token is taken when this
   * returns 0), else the header pacing. Redis failing never stops a request: it is told once, and
   * the headers pace until Redis is back.
   */
  private async budgetWait(now: number, bulk: boolean): Promise<number> {
    const shared = this.opts.shared;
    if (shared?.ready) {
      try {
        const wait = await shared.take();
        this.setSharedProblem(undefined);
        return wait;
      } catch (err) {
        this.setSharedProblem(new LabError('NETWORK', 'http.sharedBudgetDown', { reason: (err as Error).message }));
      }
    } else if (shared?.starting) {
      return 100;
    } else if (shared) {
      this.setSharedProblem(new LabError('NETWORK', 'http.sharedBudgetDown', { reason: shared.problem }));
    }
    return this.pacer.delay(Date.now() > now ? Date.now() : now, bulk);
  }

  private setSharedProblem(err: LabError | undefined): void {
    if (!err === !this.sharedProblem) return;
    this.sharedProblem = err;
    this.opts.onSharedProblem?.(err);
  }

  /** Set while the tenant's shared budget (Redis) cannot be used and the headers pace instead. */
  get sharedBudgetProblem(): LabError | undefined {
    return this.sharedProblem;
  }

  /** How requests are paced now: by the shared bucket, or by the headers (alone or in company). */
  pacing(): 'shared-budget' | PacingMode {
    return this.opts.shared?.ready && !this.sharedProblem ? 'shared-budget' : this.pacer.mode(Date.now());
  }

  private renewNudge(): void {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.nudge = { promise, resolve };
  }

  /**
   * A request that passed `acquire` is over: answered (its headers are read; `status` 429 means the
   * server did not count it) or failed without an answer (no headers).
   */
  settle(headers?: Record<string, unknown>, status?: number): void {
    const now = Date.now();
    const rate = headers ? readRateHeaders(headers) : undefined;
    this.pacer.answered(now, rate, status !== 429, headers !== undefined);
    if (rate && rate.remaining <= 0) this.blockUntil(now + rate.resetMs + WINDOW_MARGIN_MS);
    // Waiters re-check at once: this answer may let the next request go.
    const { resolve } = this.nudge;
    this.renewNudge();
    resolve();
  }

  /** Reads the server's view of the window from a response's headers (same as settle). */
  observe(headers: Record<string, unknown>, status?: number): void {
    this.settle(headers, status);
  }

  /** Holds every request of the tenant until `time` (e.g. after a 429). */
  blockUntil(time: number): void {
    if (time <= this.blockedUntil) return;
    this.blockedUntil = time;
    this.persist('b', Math.round(time));
  }
}


const governors = new Map<string, RateGovernor>();

/** Forgets every governor, as a new process would start (for tests of a restart). */
export function forgetGovernors(): void {
  governors.clear();
}

/** The one governor for `key` (tenant URL + credential identity), created on first use. */
export function governorFor(key: string, opts: GovernorOptions): RateGovernor {
  let g = governors.get(key);
  if (!g) {
    g = new RateGovernor(opts);
    governors.set(key, g);
  } else {
    g.configure(opts);
  }
  return g;
}
