/**
 * A per-tenant request governor. Every client that talks to one tenant (one Benchling URL and
 * credential) shares one governor, so all the nodes of a flow together stay under the tenant's
 * limit instead of each discovering it through 429s.
 *
 * Two sources of truth, whichever is stricter: our own sliding window (the documented default for
 * Benchling is 60 requests per 30 s) and the server's `x-rate-limit-remaining` / `-reset` headers.
 */
import { sleep } from '../timing';

export interface GovernorOptions {
  /** Requests allowed per window. 0 or less disables our own window (headers still apply). */
  limit: number;
  windowMs: number;
}

// Requests are counted when sent but the server counts them when they arrive; a small margin
// keeps a burst at the edge of a window from landing 61 in the server's.
const WINDOW_MARGIN_MS = 250;

export class RateGovernor {
  private readonly sent: number[] = [];
  private blockedUntil = 0;
  private queue: Promise<void> = Promise.resolve();
  /** Set while requests wait for the rate limit; nodes show it in their status. */
  waiting = 0;

  constructor(private opts: GovernorOptions) {}

  configure(opts: GovernorOptions): void {
    this.opts = opts;
  }

  /** Resolves when one more request may be sent now. Callers are served in order. */
  acquire(signal?: AbortSignal): Promise<void> {
    const turn = this.queue.then(() => this.waitForSlot(signal));
    // A cancelled waiter must not block the ones behind it.
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async waitForSlot(signal?: AbortSignal): Promise<void> {
    this.waiting++;
    try {
      for (;;) {
        const now = Date.now();
        const { limit, windowMs } = this.opts;
        const span = windowMs + WINDOW_MARGIN_MS;
        while (this.sent.length && this.sent[0] <= now - span) this.sent.shift();
        let wait = this.blockedUntil - now;
        if (limit > 0 && this.sent.length >= limit) wait = Math.max(wait, this.sent[0] + span - now);
        if (wait <= 0) {
          this.sent.push(now);
          return;
        }
        await sleep(wait, signal);
      }
    } finally {
      this.waiting--;
    }
  }

  /** Reads the server's view of the window from a response's headers. */
  observe(headers: Record<string, unknown>): void {
    const remaining = Number(headers['x-rate-limit-remaining']);
    const reset = Number(headers['x-rate-limit-reset']);
    if (Number.isFinite(remaining) && remaining <= 0 && Number.isFinite(reset) && reset >= 0) {
      this.blockUntil(Date.now() + reset * 1000 + WINDOW_MARGIN_MS);
    }
  }

  /** Holds every request of the tenant until `time` (e.g. after a 429). */
  blockUntil(time: number): void {
    this.blockedUntil = Math.max(this.blockedUntil, time);
  }
}

const governors = new Map<string, RateGovernor>();

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
