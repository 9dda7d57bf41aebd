/**
 * The log tells each file's outcome: one `info` line per file done (name, run, duration,
 * attempts), one `warn` line per failure with its reason and what happens next (a retry at a
 * time, or the dead-letter). `lab-watch-folder` logs what this returns, in its language.
 */
import type { AckResult } from '../clients/folder-watcher';
import type { FailureReason, JourneyRecord } from './journey';
import type { Translate } from './node-red';

export interface OutcomeLine {
  level: 'log' | 'warn';
  text: string;
}

/** "1.2 s", "3 min 4 s", "2 h 5 min". */
export function durationText(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/**
 * The line for an acknowledgement's result, or null when there is nothing new to tell (a repeated
 * ack, a second report of a failure already recorded, an unknown or stale file: warned elsewhere).
 */
export function outcomeLine(t: Translate, result: AckResult, rec: JourneyRecord | undefined, reason?: FailureReason, now = Date.now()): OutcomeLine | null {
  const name = result.relativePath || result.path;
  if (result.outcome === 'done') {
    if (!rec) return { level: 'log', text: t('log.done', { name, run: '-', duration: '?', attempts: 1 }) };
    const start = rec.seenAt ?? rec.firstSentAt ?? rec.emittedAt;
    return {
      level: 'log',
      text: t('log.done', { name, run: rec.steps?.assayRunId ?? '-', duration: durationText((rec.doneAt ?? now) - start), attempts: rec.emitCount }),
    };
  }
  if (result.outcome !== 'retrying' && result.outcome !== 'failed') return null;
  // Only the failure this acknowledgement recorded (a repeated report changes nothing).
  if (!reason || !rec?.failure || rec.failure.at !== reason.at) return null;
  const why = { name, code: reason.code + (reason.status ? ` ${reason.status}` : ''), message: reason.message, attempts: rec.emitCount };
  if (result.outcome === 'retrying') {
    return { level: 'warn', text: t('log.retrying', { ...why, at: new Date(result.nextAttemptAt ?? now).toISOString() }) };
  }
  return { level: 'warn', text: result.failedTo ? t('log.deadLetteredMoved', { ...why, to: result.failedTo }) : t('log.deadLettered', why) };
}
