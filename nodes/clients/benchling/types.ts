/** Benchling API v2 shapes used by the pack, as `shared/specs/benchling-openapi.yaml` defines them. */

export type BlobType = 'RAW_FILE' | 'VISUALIZATION';
export type UploadStatus = 'IN_PROGRESS' | 'COMPLETE' | 'ABORTED';

export interface Blob {
  id: string;
  name: string;
  mimeType?: string;
  type: BlobType;
  uploadStatus: UploadStatus;
}

export interface BlobPart {
  partNumber: number;
  eTag: string;
}

export type AutomationFileStatus = 'NOT_STARTED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';

export interface AutomationOutputProcessor {
  id: string;
  assayRunId: string;
  automationFileConfig?: { name: string };
  file?: Blob | null;
  status: AutomationFileStatus;
  apiURL?: string;
  archiveRecord?: { reason: string } | null;
  completeWithErrors?: boolean;
  createdAt?: string;
  modifiedAt?: string;
  errorFile?: Blob | null;
  progressStats?: { rowsSucceeded?: number; rowsFailed?: number; rowsUnprocessed?: number };
}

export interface AutomationOutputProcessorCreate {
  assayRunId: string;
  automationFileConfigName: string;
  fileId: string;
  completeWithErrors?: boolean;
  folderId?: string;
  locationId?: string;
  timezone?: string;
}

export type TaskStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED';

export interface AsyncTask<R = unknown> {
  status: TaskStatus;
  message?: string;
  errors?: unknown;
  response?: R;
}

export interface AssayRun {
  id: string;
  entryId?: string | null;
  schema?: { id: string; name: string } | null;
  fields?: Record<string, unknown>;
  createdAt?: string;
  projectId?: string | null;
  validationStatus?: string;
  [key: string]: unknown;
}

/** The `error` object of every Benchling 4xx / 5xx body. */
export interface BenchlingApiError {
  type?: string;
  message?: string;
  userMessage?: string;
  errorId?: string;
  invalidId?: string;
}

export interface AssayRunSchema {
  id: string;
  name: string;
  automationInputFileConfigs?: Array<{ name: string }>;
  automationOutputFileConfigs?: Array<{ name: string }>;
  [key: string]: unknown;
}

export interface AutomationInputGenerator {
  id: string;
  assayRunId: string;
  automationFileConfig?: { name: string };
  file?: Blob | null;
  status: AutomationFileStatus;
  [key: string]: unknown;
}

export interface BlobUrl {
  downloadURL: string;
  expiresAt: number;
}
