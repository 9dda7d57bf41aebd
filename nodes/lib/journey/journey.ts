/**
 * A file's journey: one record per version of a file (relative path + size + mtime), from the
 * moment the watcher sends it to done or the dead-letter. The watcher keeps the records durably
 * (its ledger); the Benchling nodes add what they did (blob, processor, task) through the
 * registry; the transitions here are the one place that decides what a failure leads to.
 */
import { classifyFailure, FailureKind, FailureReason } from './classify';
import { retryDelay, RetryPolicy, withinRetryWindow } from './policy';

/**
 * `emitted`:  on its way (sent, not acknowledged yet; sent again after a restart).
 * `retrying`: the last attempt failed transiently; sent again at `nextAttemptAt`.
 * `failed`:   dead-lettered: a permanent failure (or transient ones for too long); kept with its
 *             reason and never sent again until someone asks (retry) or the file changes.
 * `acked`:    acknowledged; the post-action (move/delete) has not completed yet (retried).
 * `done`:     acknowledged and post-processed (or skipped by hand); never sent again.
 */
export type JourneyState = 'emitted' | 'retrying' | 'failed' | 'acked' | 'done';

/** What the nodes along the way did with the file (ids as the services gave them). */
export interface JourneySteps {
  blobId?: string;
  uploadedAt?: number;
  processorId?: string;
  processorCreatedAt?: number;
  taskId?: string;
  taskFinishedAt?: number;
  taskStatus?: string;
  assayRunId?: string;
  entryId?: string;
}

export interface JourneyRecord {
  /** Identifies this version of the file: hash of relative path, size and mtime. */
  id: string;
  size: number;
  mtimeMs: number;
  state: JourneyState;
  /** How often this version was sent (1 = once; more after failures, retries and restarts). */
  emitCount: number;
  /** When the watcher first saw the file (entering the stability gate), where known. */
  seenAt?: number;
  /** When the watcher first saw this version (stable and sent): the journey's start. */
  firstSentAt?: number;
  /** When it was last sent. */
  emittedAt: number;
  ackedAt?: number;
  doneAt?: number;
  /** `retrying`: when it is sent again (Unix ms). */
  nextAttemptAt?: number;
  /** When the first failure of this version was reported (the retry window counts from here). */
  firstFailureAt?: number;
  /** Failures reported for this version. */
  failures?: number;
  /** The last failure, in full. */
  failure?: FailureReason;
  /** The last failure's message (kept for readers of older records). */
  error?: string;
  steps?: JourneySteps;
  /** Marked done by hand instead of processed. */
  skipped?: { by: string; at: number };
  archivedTo?: string;
  /** Where a dead-lettered file was moved (the failed folder), if it was. */
  failedTo?: string;
  /**
   * A person retried the file after Benchling's processing FAILED: the failed processor's id. The
   * next attempts process the file anew instead of following that processor's finished task
   * (an automatic re-send never does: its processor and task are recovered, never repeated).
   */
  reprocess?: string;
}

export interface FailureDecision {
  record: JourneyRecord;
  kind: FailureKind;
  /** True when transient failures went on longer than the policy allows. */
  gaveUp: boolean;
}

/** The record after a failure was reported for it: retrying with a backoff, or dead-lettered. */
export function afterFailure(rec: JourneyRecord, reason: FailureReason, policy: RetryPolicy, now = Date.now(), random?: () => number): FailureDecision {
  const kind = classifyFailure(reason);
  const failures = (rec.failures ?? 0) + 1;
  const firstFailureAt = rec.firstFailureAt ?? now;
  const base: JourneyRecord = { ...rec, failures, firstFailureAt, failure: reason, error: reason.message, ackedAt: now };
  if (kind === 'transient' && withinRetryWindow(firstFailureAt, now, policy)) {
    return { kind, gaveUp: false, record: { ...base, state: 'retrying', nextAttemptAt: now + retryDelay(failures, policy, random) } };
  }
  return { kind, gaveUp: kind === 'transient', record: { ...base, state: 'failed', nextAttemptAt: undefined } };
}

/** The record when it is sent (first time, a retry, a re-send after a restart). */
export function afterSend(prev: JourneyRecord | undefined, id: string, size: number, mtimeMs: number, now = Date.now(), seenAt?: number): JourneyRecord {
  const same = prev && prev.id === id ? prev : undefined;
  return {
    ...(same ?? {}),
    id,
    size,
    mtimeMs,
    state: 'emitted',
    emitCount: (same?.emitCount ?? 0) + 1,
    seenAt: same?.seenAt ?? seenAt,
    firstSentAt: same?.firstSentAt ?? now,
    emittedAt: now,
    nextAttemptAt: undefined,
  };
}

/** Whether a record is finished: nothing more will happen to it without a person or a new version. */
export function isFinished(rec: JourneyRecord): boolean {
  return rec.state === 'done' || rec.state === 'failed';
}
