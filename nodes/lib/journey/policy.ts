/** When a file whose attempt failed transiently is sent again, and when the journey gives up. */

export interface RetryPolicy {
  /** Wait before the second attempt; doubles after each failure. Default 30 s. */
  baseMs: number;
  /** The longest wait between attempts. Default 30 min. */
  maxMs: number;
  /** After this long since the first failure, a transient failure dead-letters the file. Default 24 h. */
  giveUpAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 30_000, maxMs: 30 * 60_000, giveUpAfterMs: 24 * 3600_000 };

/**
 * The wait after the `failures`-th failure (1 = the first): base · 2^(failures−1), capped at max,
 * then scaled by a random factor in [0.75, 1.25] so files that failed together (an outage) do not
 * come back in one burst and meet the rate limit together.
 */
export function retryDelay(failures: number, p: RetryPolicy, random: () => number = Math.random): number {
  const exp = Math.min(p.maxMs, p.baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(exp * (0.75 + 0.5 * random()));
}

/** Whether a transient failure at `now` is still worth another attempt. */
export function withinRetryWindow(firstFailureAt: number, now: number, p: RetryPolicy): boolean {
  return now - firstFailureAt < p.giveUpAfterMs;
}
