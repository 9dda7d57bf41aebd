/** Waiting and backing off, shared by the HTTP client and the poller. */
import { LabError } from './http/errors';

/** Resolves after `ms`, or rejects with a CANCELLED LabError as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelled(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function cancelled(signal?: AbortSignal): LabError {
  const reason = signal?.reason instanceof Error ? signal.reason.message : 'cancelled';
  return new LabError('CANCELLED', 'common.cancelled', { reason });
}

export interface BackoffOptions {
  /** First delay, ms. */
  baseMs: number;
  /** Upper bound of the exponential part, ms. */
  maxMs: number;
  /** Random extra of up to this many ms, so many clients do not retry in step. */
  jitterMs?: number;
}

/**
 * Exponential backoff with jitter: min(base · 2^attempt, max) + rand(0, jitter).
 * Benchling documents min(2^n + rand(0,1) s, 15 s) for 429s; that is baseMs 1000, maxMs 15000.
 */
export function backoffDelay(attempt: number, o: BackoffOptions): number {
  const exp = Math.min(o.maxMs, o.baseMs * 2 ** Math.max(0, attempt));
  return exp + Math.random() * (o.jitterMs ?? Math.min(1000, o.baseMs));
}

/**
 * One signal that aborts when any of `signals` does (with that signal's reason). Uses
 * AbortSignal.any where the runtime has it (Node ≥ 20.3); the fallback removes its listeners once
 * it fires, and `dispose` removes them when the combined signal is no longer needed, so a
 * long-lived caller signal does not collect one listener per request.
 */
export function anySignal(signals: Array<AbortSignal | undefined>): { signal: AbortSignal; dispose: () => void } {
  const list = signals.filter((s): s is AbortSignal => !!s);
  if (list.length === 1) return { signal: list[0], dispose: () => undefined };
  const any = (AbortSignal as unknown as { any?: (s: AbortSignal[]) => AbortSignal }).any;
  if (any) return { signal: any(list), dispose: () => undefined };
  const ctl = new AbortController();
  const onAbort = (e: Event) => {
    dispose();
    ctl.abort((e.target as AbortSignal).reason);
  };
  const dispose = () => list.forEach((s) => s.removeEventListener('abort', onAbort));
  for (const s of list) {
    if (s.aborted) {
      ctl.abort(s.reason);
      break;
    }
    s.addEventListener('abort', onAbort, { once: true });
  }
  if (ctl.signal.aborted) dispose();
  return { signal: ctl.signal, dispose };
}
