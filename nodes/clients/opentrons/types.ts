/** Shapes of the Opentrons robot-server API (both generations) that the pack reads. */

export type Generation = 'runs' | 'sessions';
export type GenerationSetting = 'auto' | Generation;

/** `GET /health` (flat, no envelope). `robot_model` only from 5.0. */
export interface Health {
  name: string;
  api_version: string;
  fw_version?: string;
  system_version?: string;
  robot_model?: string;
  robot_serial?: string;
  [k: string]: unknown;
}

/** 5.x+ error occurrence in a run or an analysis. */
export interface ErrorOccurrence {
  id?: string;
  createdAt?: string;
  isDefined?: boolean;
  errorType?: string;
  errorCode?: string;
  detail?: string;
  errorInfo?: Record<string, unknown>;
  wrappedErrors?: ErrorOccurrence[];
}

// ---- runs API (5.x – 8.x) --------------------------------------------------------------------

export type EngineStatus =
  | 'idle'
  | 'running'
  | 'paused'
  | 'blocked-by-open-door'
  | 'stop-requested'
  | 'finishing'
  | 'awaiting-recovery'
  | 'awaiting-recovery-paused'
  | 'awaiting-recovery-blocked-by-open-door'
  | 'stopped'
  | 'failed'
  | 'succeeded';

export const TERMINAL_RUN_STATUSES: ReadonlySet<string> = new Set(['stopped', 'failed', 'succeeded']);

export interface RunAction {
  id: string;
  createdAt: string;
  actionType: 'play' | 'pause' | 'stop' | 'resume-from-recovery';
}

export interface Run {
  id: string;
  ok?: boolean;
  createdAt: string;
  status: EngineStatus;
  current: boolean;
  actions: RunAction[];
  errors: ErrorOccurrence[];
  protocolId?: string;
  startedAt?: string;
  completedAt?: string;
  runTimeParameters?: Array<{ variableName: string; value: unknown; [k: string]: unknown }>;
  labwareOffsets?: LabwareOffset[];
  /** Present on a BadRun (ok: false). */
  dataError?: ErrorOccurrence;
  [k: string]: unknown;
}

/** `POST /dataFiles` answer (8.0+): a CSV stored on the robot for a CSV runtime parameter. */
export interface DataFile {
  id: string;
  name: string;
  createdAt: string;
}

/** `LabwareOffsetCreate` on `POST /runs` (5.0+): the robot's own shape. */
export interface LabwareOffsetCreate {
  definitionUri: string;
  location: { slotName: string; moduleModel?: string; definitionUri?: string };
  vector: { x: number; y: number; z: number };
}

/** A run's recorded offset (`LabwareOffset`). */
export interface LabwareOffset extends LabwareOffsetCreate {
  id: string;
  createdAt: string;
}

/**
 * A runtime parameter as an analysis lists it (v8.1.0: NumberParameter | EnumParameter |
 * BooleanParameter | CSVParameter).
 */
export interface RunTimeParameter {
  variableName: string;
  displayName: string;
  type: 'int' | 'float' | 'bool' | 'str' | 'csv_file';
  value?: unknown;
  default?: unknown;
  min?: number;
  max?: number;
  choices?: Array<{ displayName: string; value: number | string }>;
  file?: { id: string; name: string };
  [k: string]: unknown;
}

export interface ProtocolFile {
  name: string;
  role: 'main' | 'labware' | 'data';
}

export interface AnalysisSummary {
  id: string;
  status: 'pending' | 'completed';
  runTimeParameters?: unknown[];
}

export interface Protocol {
  id: string;
  createdAt: string;
  files: ProtocolFile[];
  protocolType: string;
  robotType: string;
  metadata: Record<string, unknown>;
  analysisSummaries: AnalysisSummary[];
  key?: string;
  protocolKind?: string;
}

export interface Analysis {
  id: string;
  status: 'pending' | 'completed';
  result?: 'ok' | 'not-ok' | 'parameter-value-required';
  errors?: ErrorOccurrence[];
  commands?: unknown[];
  runTimeParameters?: RunTimeParameter[];
}

export interface CommandSummary {
  id: string;
  key?: string;
  commandType: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed';
  params?: Record<string, unknown>;
}

export interface CommandPage {
  data: CommandSummary[];
  meta: { cursor: number; totalLength: number };
  links?: { current?: { href: string; meta?: { index?: number; commandId?: string } } };
}

// ---- sessions API (4.x) ----------------------------------------------------------------------

export type SessionState = 'loaded' | 'running' | 'finished' | 'stopped' | 'paused' | 'error' | null;

export interface SessionEvent {
  source: 'protocol' | 'sessionCommand';
  event: string;
  timestamp: string;
  commandId?: string;
  params?: Record<string, unknown> | null;
  result?: string | null;
}

export interface Session {
  id: string;
  createdAt: string;
  sessionType: string;
  createParams: { protocolId: string };
  details: { protocolId: string; currentState: SessionState; events: SessionEvent[] };
}

export interface LegacyProtocolError {
  type: string;
  description: string;
  lineNumber?: number;
  fileName?: string;
}

export interface LegacyProtocol {
  id: string;
  protocolFile: { basename: string };
  supportFiles: Array<{ basename: string }>;
  lastModifiedAt: string;
  createdAt: string;
  metadata: Record<string, unknown>;
  requiredEquipment: Record<string, unknown>;
  errors?: LegacyProtocolError[];
}

export type SessionCommand = 'protocol.startRun' | 'protocol.pause' | 'protocol.resume' | 'protocol.cancel' | 'protocol.startSimulate';

export interface AdvancedSetting {
  id: string;
  value: boolean | null;
  [k: string]: unknown;
}
