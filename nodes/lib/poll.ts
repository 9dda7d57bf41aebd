/**
 * The pack's one poller: ask until the answer is terminal, waiting longer between asks, giving up
 * at a timeout, stopping at once when the node closes. Transient failures (network, timeouts,
 * outages) during a long wait do not end it: the thing being followed is still running, so the
 * poller keeps asking until the timeout.
 */
import { LabError } from './http/errors';
import { messageRef, type MessageRef } from './messages';
import { cancelled, sleep } from './timing';

export interface PollOptions {
  /** First wait between polls, ms. */
  intervalMs: number;
  /** Longest wait between polls, ms. */
  maxIntervalMs?: number;
  /** Each wait is the previous one times this (1 = fixed interval). */
  factor?: number;
  /** Give up after this long, ms (0 = never). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** What is being followed, for messages ("Benchling task 1234"): an id, or a message of its own. */
  what?: string | MessageRef;
  /** Told after every answer and every transient failure (for status text). */
  onPoll?: (info: { attempt: number; elapsedMs: number; error?: LabError }) => void;
}

const TRANSIENT: ReadonlySet<string> = new Set(['NETWORK', 'TIMEOUT', 'UNAVAILABLE', 'RATE_LIMITED']);

export function isTransient(err: unknown): boolean {
  return err instanceof LabError && (TRANSIENT.has(err.code) || (err.code === 'HTTP' && (err.status ?? 0) >= 500));
}

/** Calls `check` until `isDone(result)`; returns that result. */
export async function pollUntil<T>(check: () => Promise<T>, isDone: (result: T) => boolean, o: PollOptions): Promise<T> {
  const started = Date.now();
  const factor = o.factor ?? 1.5;
  const maxInterval = o.maxIntervalMs ?? o.intervalMs;
  let interval = o.intervalMs;
  for (let attempt = 1; ; attempt++) {
    if (o.signal?.aborted) throw cancelled(o.signal);
    try {
      const result = await check();
      o.onPoll?.({ attempt, elapsedMs: Date.now() - started });
      if (isDone(result)) return result;
    } catch (err) {
      if (!isTransient(err)) throw err;
      o.onPoll?.({ attempt, elapsedMs: Date.now() - started, error: err as LabError });
    }
    const elapsed = Date.now() - started;
    if (o.timeoutMs && elapsed >= o.timeoutMs) {
      throw new LabError('TIMEOUT', 'poll.notFinished', { what: o.what ?? messageRef('poll.polling'), seconds: Math.round(elapsed / 1000) });
    }
    const wait = o.timeoutMs ? Math.min(interval, Math.max(0, o.timeoutMs - elapsed)) : interval;
    await sleep(wait, o.signal);
    interval = Math.min(maxInterval, interval * factor);
  }
}
