/**
 * The shapes a run of the OT-2 runner reports (progress, durable record, outcome) and the pure
 * pieces both API generations share: robot errors, phases, the errors a busy robot or an open door
 * gives. Split out of runner.ts; no I/O here.
 */
import { LabError } from '../../lib/http/errors';
import { errorText, type MessageKey, type MessageVars } from '../../lib/messages';
import type { OnWait } from '../../lib/http/client';
import type { FileSource } from './multipart';
import type { ErrorOccurrence, Generation, LabwareOffsetCreate, SessionEvent } from './types';
import type { ParameterFiles } from './parameters';

export type Phase =
  | 'checking'
  | 'uploading'
  | 'analyzing'
  | 'loading'
  | 'starting'
  | 'running'
  | 'paused'
  | 'door-open'
  | 'stopping'
  | 'finishing'
  | 'needs-attention'
  | 'offline'
  | 'cleaning-up';

export interface Progress {
  phase: Phase;
  /** The robot's own state word (`running`, `blocked-by-open-door`, `loaded`…), when known. */
  state?: string;
  /** The current step in the robot's own words (command type and message), where the robot tells it. */
  step?: string;
  /** Runs API: the current step's number (1-based) and the number of steps, where the robot tells them. */
  stepNumber?: number;
  stepCount?: number;
}

/** What must survive a restart to find the run again (kept in the node's journal). */
export interface RunRecord {
  generation: Generation;
  baseUrl: string;
  protocolId?: string;
  /**
   * Set before the upload, so that a crash while it is in flight can still find the protocol:
   * runs API — the `key` the protocol is uploaded with; 4.x — the protocol id (the file stem).
   */
  pendingProtocol?: string;
  runId?: string;
  started: boolean;
  startedAtMs?: number;
  keep: boolean;
  createdAt: string;
  /** Runs API 8.0+: data files this run uploaded (not ones the robot already held), to delete in the cleanup. */
  dataFileIds?: string[];
}

export interface RobotError {
  type: string;
  detail: string;
  code?: string;
  line?: number;
}

/** A warning as a message id (`lab-messages.errors.<key>`) and its values; `reason` is the error behind it. */
export interface RunWarning {
  key: MessageKey;
  vars: MessageVars;
}

export type Outcome = 'succeeded' | 'failed' | 'stopped' | 'not-loaded';

export interface RunOutcome {
  outcome: Outcome;
  /** The robot's final state word (`succeeded`, `finished`, `failed`, `error`, `stopped`…). */
  state: string;
  generation: Generation;
  protocolId?: string;
  runId?: string;
  /** From the start being accepted to the end being seen, ms. */
  durationMs: number;
  startedAt?: string;
  completedAt?: string;
  errors: RobotError[];
  /** Protocol and run left on the robot (keep) or deleted. */
  kept: boolean;
  /** Cleanup steps that did not work (the run still ended as stated), in English. */
  warnings: string[];
  /** The same warnings as message ids and values, for a node to tell in its own language. */
  warningMessages: RunWarning[];
  /** Date.now() when the end was seen (for latency figures). */
  seenAtMs: number;
  /** The CSV parameter files on the robot: parameter, data file id and name, and whether the robot already held it. */
  parameterFiles?: Array<{ parameter: string; id: string; name: string; reused: boolean }>;
  /** The labware offsets sent with the run, and the earlier run they were taken from (offsetsFromRecentRun). */
  labwareOffsets?: LabwareOffsetCreate[];
  labwareOffsetsFromRun?: string;
}

export interface RunRequest {
  protocol: FileSource;
  supportFiles?: FileSource[];
  /** Runs API only (robot software 7.3+). */
  runTimeParameterValues?: Record<string, unknown>;
  /** CSV runtime parameters (robot software 8.0+): a file for each parameter's variable name. */
  runTimeParameterFiles?: ParameterFiles;
  /** Runs API (5.0+): offsets in the robot's own shape, passed on POST /runs. */
  labwareOffsets?: LabwareOffsetCreate[];
  /** Runs API (5.0+): use the offsets of the most recent run of the same protocol on this robot. */
  offsetsFromRecentRun?: boolean;
  /** Leave the protocol and the run/session on the robot. */
  keep?: boolean;
}

export interface RunnerOptions {
  pollIntervalMs?: number;
  /** Analysis / loading must finish within this, ms. */
  loadTimeoutMs?: number;
  /** The whole run must end within this, ms (0 = no limit). */
  runTimeoutMs?: number;
  /** Give up when the robot stays unreachable this long, ms (0 = never). */
  offlineTimeoutMs?: number;
  /** 4.x: delete a protocol already on the robot (only one may exist) when no session runs it. */
  replaceExisting?: boolean;
  /** Runs API: read the current command on every poll while running (one more request per poll). */
  readSteps?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Called whenever the durable record changes; null when there is nothing left to recover. */
  onRecord?: (r: RunRecord | null) => void;
  onWait?: OnWait;
}

export const SESSION_FLAG = 'enableHttpProtocolSessions';
export const RUNS_DATA_EXT = new Set(['.csv', '.txt']);
export const PROTOCOL_EXT = new Set(['.py', '.json']);

export function fail(key: MessageKey, vars: MessageVars = {}, extra: { status?: number; apiError?: Record<string, unknown> } = {}): LabError {
  return new LabError('TASK_FAILED', key, vars, extra);
}

export function flagOffError(): LabError {
  return fail('ot2.flagOff', { flag: SESSION_FLAG }, { status: 403 });
}

/** A poll that gave up at its time limit is told with the run's own words for what it waited for. */
export async function timeLimit<T>(poll: Promise<T>, key: MessageKey, vars: MessageVars = {}): Promise<T> {
  try {
    return await poll;
  } catch (err) {
    if (err instanceof LabError && err.code === 'TIMEOUT' && err.key === 'poll.notFinished') {
      throw new LabError('TIMEOUT', key, { ...vars, seconds: err.vars.seconds }, { cause: err });
    }
    throw err;
  }
}

/** A warning for the outcome: English text (for msg.payload) and its message id (for the node). */
export function warning(key: MessageKey, vars: MessageVars, cause?: unknown): RunWarning {
  return { key, vars: { ...vars, reason: cause instanceof Error ? cause : String(cause ?? '') } };
}

export function ms(a?: string, b?: string): number | undefined {
  const x = a ? Date.parse(a) : NaN;
  const y = b ? Date.parse(b) : NaN;
  return Number.isFinite(x) && Number.isFinite(y) ? Math.max(0, y - x) : undefined;
}

export function robotErrors(list: ErrorOccurrence[] | undefined): RobotError[] {
  return (list ?? []).map((e) => {
    const line = /\[line (\d+)\]/.exec(e.detail ?? '')?.[1];
    return { type: e.errorType ?? 'Error', detail: e.detail ?? '', code: e.errorCode, line: line ? Number(line) : undefined };
  });
}

export function ignore404(err: unknown): void {
  if (!(err instanceof LabError && err.status === 404)) throw err;
}

export function busyError(detail: string): LabError {
  return detail ? fail('ot2.busyDetail', { detail }, { status: 409 }) : fail('ot2.busy', {}, { status: 409 });
}

export function doorError(detail: string): LabError {
  return detail ? fail('ot2.doorOpenDetail', { detail }, { status: 409 }) : fail('ot2.doorOpen', {}, { status: 409 });
}

export function runsPhase(status: string): Phase {
  switch (status) {
    case 'idle':
      return 'starting';
    case 'paused':
      return 'paused';
    case 'blocked-by-open-door':
    case 'awaiting-recovery-blocked-by-open-door':
      return 'door-open';
    case 'stop-requested':
      return 'stopping';
    case 'finishing':
      return 'finishing';
    case 'awaiting-recovery':
    case 'awaiting-recovery-paused':
      return 'needs-attention';
    default:
      return 'running';
  }
}

export function sessionPhase(state: string): Phase {
  if (state === 'paused') return 'paused';
  if (state === 'loaded') return 'starting';
  return 'running';
}

/** The text of the last protocol step that started (4.x events `command.X.start` with params.text). */
export function sessionStep(events: SessionEvent[]): string | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    if (e.source === 'protocol' && /\.start$/.test(e.event) && typeof e.params?.text === 'string') return e.params.text as string;
  }
  return undefined;
}

/**
 * 4.x sessions put no error text in the session body, only in `events` (reference §1.3). UNCONFIRMED
 * which event carries it: we take protocol events whose `result` is set or whose name says error.
 */
export function sessionErrors(events: SessionEvent[]): RobotError[] {
  const found = events
    .filter((e) => e.source === 'protocol' && (/error|exception/i.test(e.event) || (typeof e.result === 'string' && e.result !== '')))
    .map((e) => ({ type: e.event, detail: String(e.result ?? e.params?.text ?? e.event) }));
  return found.length ? found : [{ type: 'ProtocolError', detail: errorText('ot2.protocolErrorNoDetail') }];
}
