/**
 * Creating an automation output processor for a file and starting its processing, recorded in a
 * journal per (run, file config, file) so that neither write is ever blindly repeated.
 *
 * Both writes are non-idempotent and their answer can be lost (reset, timeout, 5xx, a proxy's
 * 502 page, a crash): the server may have acted. So a marker is journalled before each, and when
 * the same file comes again the marker means "look first":
 *  - create: the run's processors are listed and the one holding the file is used;
 *  - `:process-output`: the processor is fetched; NOT_STARTED → processing is started (safe);
 *    RUNNING / SUCCEEDED / FAILED → it was started, and is not started again. The task id is then
 *    lost, so the result says `followProcessor`: the poll node follows the processor instead.
 */
import type { OnWait } from '../../lib/http/client';
import { badInput } from '../../lib/http/errors';
import { DEFAULT_RETENTION_MS, timeOfValue, type JournalOptions } from '../../lib/journal';
import type { BenchlingClient } from './client';
import type { AutomationOutputProcessor } from './types';

export interface ProcessorRecord {
  /** Absent while the create request is in flight: a lost answer or a crash leaves only this marker. */
  processor?: AutomationOutputProcessor;
  /** Set while `:process-output` is in flight (no taskId yet): its answer may be lost. */
  starting?: 1;
  taskId?: string;
  at: string;
}

/** The journal the processing is recorded in (a Journal, or anything with the same three calls). */
export interface ProcessorJournal {
  get(key: string): ProcessorRecord | undefined;
  set(key: string, value: ProcessorRecord): void;
}

export function processorJournalOptions(retentionMs = DEFAULT_RETENTION_MS): JournalOptions<ProcessorRecord> {
  return { retention: { maxAgeMs: retentionMs, timeOf: (r) => timeOfValue(r.at) } };
}

export interface ProcessRequest {
  assayRunId: string;
  configName: string;
  fileId: string;
  completeWithErrors: boolean;
  /** A FAILED processor to recover from (msg.processorId), and how. */
  failedId?: string;
  recovery?: 'none' | 'archive' | 'patch';
  /**
   * A processor whose processing FAILED and that a person asked to process again
   * (`msg.labwireFile.reprocess`): if it is the one recorded for this file, a new one is created.
   * Naming the id keeps re-sends of the retried attempt from creating yet another.
   */
  reprocess?: string;
}

export type ProcessingStep = 'archiving' | 'replacingFile' | 'checking' | 'creating' | 'starting';

export interface ProcessOptions {
  signal?: AbortSignal;
  onWait?: OnWait;
  onStep?: (step: ProcessingStep) => void;
}

export interface ProcessingResult {
  processor: AutomationOutputProcessor;
  /** Absent when `followProcessor`: processing was started by an earlier attempt whose answer was lost. */
  taskId?: string;
  followProcessor: boolean;
  /** The processor was recorded earlier (a re-send). */
  reused: boolean;
  /** The FAILED processor this one replaces. */
  recoveredFrom?: string;
}

const now = () => new Date().toISOString();

export async function createAndProcess(client: BenchlingClient, journal: ProcessorJournal, r: ProcessRequest, o: ProcessOptions = {}): Promise<ProcessingResult> {
  const { signal, onWait } = o;
  const step = (s: ProcessingStep) => o.onStep?.(s);
  const key = `${r.assayRunId}|${r.configName}|${r.fileId}`;
  let rec = journal.get(key);
  if (r.reprocess && rec?.processor?.id === r.reprocess) rec = undefined;
  let processor = rec?.processor;
  const reused = !!processor;
  let recoveredFrom: string | undefined;
  if (r.failedId && r.recovery && r.recovery !== 'none') {
    const failed = await client.getOutputProcessor(r.failedId, signal);
    if (failed.status === 'FAILED' && failed.file?.id === r.fileId) {
      throw badInput('benchling.processingFailed', { file: r.fileId, processor: r.failedId });
    }
    if (failed.status === 'FAILED' && !rec) {
      recoveredFrom = r.failedId;
      if (r.recovery === 'archive') {
        step('archiving');
        await client.archiveOutputProcessors([r.failedId], 'Made in error', signal);
      } else {
        step('replacingFile');
        journal.set(key, { at: now() }); // a lost answer from here on is recovered by lookup
        processor = await client.updateOutputProcessorFile(r.failedId, r.fileId, signal);
      }
    }
  }
  if (rec && !processor) {
    // A create was sent but its answer never recorded (lost answer, crash): look before creating again.
    step('checking');
    processor = await client.findOutputProcessor(r.assayRunId, r.configName, r.fileId, signal);
  }
  if (!processor) {
    step('creating');
    journal.set(key, { at: now() });
    processor = await client.createOutputProcessor(
      { assayRunId: r.assayRunId, automationFileConfigName: r.configName, fileId: r.fileId, completeWithErrors: r.completeWithErrors },
      signal,
      onWait,
    );
  }
  if (!rec?.processor) {
    rec = { processor, at: now() };
    journal.set(key, rec);
  }
  let taskId = rec.taskId;
  let followProcessor = false;
  if (!taskId && rec.starting) {
    // `:process-output` was sent but its answer never recorded: ask the processor, never repeat blindly.
    step('checking');
    const current = await client.getOutputProcessor(processor.id, signal);
    if (current.status !== 'NOT_STARTED') {
      processor = current;
      followProcessor = true;
    }
  }
  if (!taskId && !followProcessor) {
    step('starting');
    journal.set(key, { processor, starting: 1, at: now() });
    taskId = await client.processOutput(processor.id, signal, onWait);
    journal.set(key, { processor, taskId, at: now() });
  }
  return { processor, taskId, followProcessor, reused, recoveredFrom };
}
