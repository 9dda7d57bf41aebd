/**
 * Header-aware pacing: how one process shares a tenant's rate window with other processes it
 * cannot see (other lab PCs on the same Benchling tenant). Pure logic over times passed in, so
 * tests drive it in virtual time; the governor (governor.ts) feeds it and waits as it says.
 *
 * What every answer tells us: `x-rate-limit-limit` (L), `-remaining` (R, after this request) and
 * `-reset` (seconds until the tenant's window starts afresh). The window is the tenant's, so R
 * falls with everybody's requests. The policy:
 *
 * 1. Spread what is left over the time left. In shared mode the next request may go
 *    `timeLeft / available` after our previous one, where
 *    `available = R − our unanswered requests − reserve`. Each process slows down as R falls,
 *    whoever spent it. With N processes doing this the remaining budget decays like
 *    (1 − t/T)^N: it never runs out before the reset, whatever N is, and the window is still
 *    nearly used up (the decay is front-loaded, not wasteful).
 * 2. Keep a reserve: `max(2, ⌈L/10⌉)` (6 of 60). Each process acts on its last answer; the others
 *    may have sent a request each since. The reserve absorbs those, so several PCs acting on
 *    slightly old news do not overshoot. It suits fleets of up to about L/10 PCs busy at once;
 *    larger fleets should use the shared Redis budget (redis-bucket.ts).
 *    Our own unanswered requests are subtracted too: they may not be in R yet.
 * 3. Nothing known about the current window (first start, a restart, after a reset, after a long
 *    pause): one request at a time until an answer says where the window stands (at most 2 s
 *    each, so a slow upload holds nobody up) — never a burst into a window others may have
 *    spent, never a long wait for nothing.
 * 4. Three modes, by what the headers showed of others' requests (R falling by more than our own
 *    answers account for: `L − R − ours − unanswered ≥ 1` within one window):
 *    - shared: others seen within the last window → rule 1, strictly (one request per gap);
 *    - alone: a whole window of our own answers with nobody else in them → no pacing at all, our
 *      own window (the governor's) is the limit: the single PC keeps its full speed, and a fleet
 *      is back at full speed within a window when the others go quiet;
 *    - unknown (a fresh start, or news older than a window, and nobody seen): no spacing, but at
 *      most `reserve` requests unanswered at once — the first answers show whether anyone else is
 *      there, and PCs started together spend at most `reserve` each before they know.
 * 5. R at 0 (or below our reserve + unanswered): wait for the reset, in every mode.
 * 6. Answers without rate headers (a server that does not send them; the reference says the spec
 *    declares them on few operations, so their presence everywhere is UNCONFIRMED): no header
 *    pacing until they come back; the governor's own window still holds.
 *
 * Fixed vs sliding window on the server: the reference documents "requests left in the period"
 * and "seconds left in the period" (a fixed period); a window is told apart from the next by its
 * reset time moving on by more than the headers' one-second rounding. An answer from the previous
 * window arriving late is ignored for R (it is older news).
 */

export interface RateHeaders {
  /** x-rate-limit-limit, when sent. */
  limit?: number;
  /** x-rate-limit-remaining: requests left in the window after this one. */
  remaining: number;
  /** x-rate-limit-reset in ms: time until the window starts afresh. */
  resetMs: number;
}

/** The rate headers of an answer, or undefined when it carries none (or unusable ones). */
export function readRateHeaders(headers: Record<string, unknown>): RateHeaders | undefined {
  const remaining = Number(headers['x-rate-limit-remaining']);
  const reset = Number(headers['x-rate-limit-reset']);
  if (headers['x-rate-limit-remaining'] === undefined || headers['x-rate-limit-reset'] === undefined) return undefined;
  if (!Number.isFinite(remaining) || !Number.isFinite(reset) || reset < 0) return undefined;
  const limit = Number(headers['x-rate-limit-limit']);
  return { remaining: Math.max(0, remaining), resetMs: reset * 1000, limit: Number.isFinite(limit) && limit > 0 ? limit : undefined };
}

/** The part of a window bulk requests (blob parts) never take: a sixth (10 of Benchling's 60 / 30 s). */
const BULK_RESERVE = 1 / 6;

/**
 * Slots of a window bulk requests may take: all but BULK_RESERVE, at least one. Applies to our
 * own window (the governor's) and to the tenant's as the headers show it, so one big upload does
 * not hold back the polls and creates of every other file — on one PC or many.
 */
export function bulkLimit(limit: number): number {
  if (limit <= 1) return limit;
  return Math.max(1, limit - Math.max(1, Math.floor(limit * BULK_RESERVE)));
}

/** The part of the window kept back for requests others sent since our last answer. */
export function reserveFor(limit: number): number {
  return Math.max(2, Math.ceil(limit / 10));
}

// Reset is given in whole seconds (rounded up), and answers take a while: two answers whose
// reset times differ by less than this are about the same window.
const SAME_WINDOW_MS = 1500;
// While nothing is known, the next request waits for an answer to the previous one, but not
// longer than this: a slow upload must not hold up every other request of the tenant.
const PROBE_PATIENCE_MS = 2000;

export type PacingMode = 'alone' | 'shared' | 'unknown';

interface WindowView {
  /** When the window starts afresh (our clock; never earlier than the server's). */
  resetAt: number;
  limit: number;
  /** The lowest remaining seen in this window: the newest news (R only falls within a window). */
  remaining: number;
  /** Our answers counted in this window. */
  ours: number;
}

export class HeaderPacer {
  private win?: WindowView;
  /** Last time someone else's requests showed in the headers. */
  private lastForeignAt = -Infinity;
  private lastObservedAt = -Infinity;
  /** Since when answers have come without a gap of a window (our news has been current). */
  private watchedSince = Infinity;
  private lastSendAt = -Infinity;
  /** Whether the latest answer carried rate headers (undefined: no answer yet). */
  private headersSeen: boolean | undefined;
  /** Our requests sent and not yet answered. */
  unanswered = 0;

  constructor(
    private windowMs: number,
    private defaultLimit: number,
  ) {}

  configure(windowMs: number, defaultLimit: number): void {
    this.windowMs = windowMs;
    this.defaultLimit = defaultLimit;
  }

  /** A request of ours goes out now. */
  sent(now: number): void {
    this.unanswered++;
    this.lastSendAt = now;
  }

  /**
   * A request of ours is over: answered (with or without rate headers) or failed without an
   * answer. `counted` is false for a 429 (the server refused it, so it did not spend the window).
   * `answer`: an answer came (with or without headers), not a network failure.
   */
  answered(now: number, headers?: RateHeaders, counted = true, answer = headers !== undefined): void {
    if (this.unanswered > 0) this.unanswered--;
    if (headers) this.observe(now, headers, counted);
    else if (answer) this.headersSeen = false;
  }

  private observe(now: number, h: RateHeaders, counted: boolean): void {
    this.headersSeen = true;
    if (now - this.lastObservedAt >= this.windowMs) this.watchedSince = now;
    this.lastObservedAt = now;
    const resetAt = now + h.resetMs;
    const limit = h.limit ?? this.defaultLimit;
    const w = this.win;
    if (!w || now >= w.resetAt || resetAt > w.resetAt + SAME_WINDOW_MS) {
      this.win = { resetAt, limit, remaining: h.remaining, ours: counted ? 1 : 0 };
    } else if (resetAt < w.resetAt - SAME_WINDOW_MS) {
      return; // a late answer from the previous window
    } else {
      w.remaining = Math.min(w.remaining, h.remaining);
      w.resetAt = Math.min(w.resetAt, resetAt);
      w.limit = limit;
      if (counted) w.ours++;
    }
    const cur = this.win!;
    // A lower bound of others' requests: our unanswered ones may already be in the count.
    if (cur.limit - cur.remaining - cur.ours - this.unanswered >= 1) this.lastForeignAt = now;
  }

  mode(now: number): PacingMode {
    if (now - this.lastForeignAt <= this.windowMs) return 'shared';
    const watched = now - this.lastObservedAt < this.windowMs && now - this.watchedSince >= this.windowMs;
    return watched ? 'alone' : 'unknown';
  }

  /** The window as last seen, while it lasts. */
  view(now: number): Readonly<WindowView> | undefined {
    return this.win && now < this.win.resetAt ? this.win : undefined;
  }

  /**
   * How long the next request should wait (0: it may go now). `bulk` (a blob part) also leaves
   * the interactive share of the tenant's window (limit − bulkLimit) to polls and creates.
   */
  delay(now: number, bulk = false): number {
    // A server (or an endpoint) that says nothing about its window cannot be shared by headers:
    // our own window (the governor's) is all there is.
    if (this.headersSeen === false) return 0;
    const w = this.view(now);
    const mode = this.mode(now);
    if (mode === 'alone') {
      // Our own window (the governor's) paces us; only an exhausted server window stops us.
      return w && w.remaining - this.unanswered <= 0 ? w.resetAt - now : 0;
    }
    const waitForAnswer = Math.max(0, this.lastSendAt + PROBE_PATIENCE_MS - now);
    if (!w) return this.unanswered > 0 ? waitForAnswer : 0;
    const reserve = reserveFor(w.limit);
    const available = w.remaining - this.unanswered - reserve - (bulk ? w.limit - bulkLimit(w.limit) : 0);
    if (available <= 0) return w.resetAt - now;
    if (mode === 'unknown') return this.unanswered >= reserve ? waitForAnswer : 0;
    const gap = (w.resetAt - now) / available;
    return Math.max(0, this.lastSendAt + gap - now);
  }
}
