// Internal records of the Benchling simulator (not part of the public API).
import type { BlobPartInfo, TaskInfo } from './types';

// ---------------------------------------------------------------------------------------------
// Internal records
// ---------------------------------------------------------------------------------------------

export interface PartRecord extends BlobPartInfo {
  file: string;
}

export interface BlobRecord {
  id: string;
  name: string;
  type: 'RAW_FILE' | 'VISUALIZATION';
  mimeType: string;
  uploadStatus: 'IN_PROGRESS' | 'COMPLETE' | 'ABORTED';
  multipart: boolean;
  md5?: string;
  size?: number;
  data?: Buffer;
  /** multipart: uploaded parts by number */
  parts: Map<number, PartRecord>;
  /** multipart, after completion: the parts making up the blob, in order */
  finalParts?: PartRecord[];
  createdAt: number;
}

export interface RunRecord {
  id: string;
  schemaId: string;
  schemaName: string;
  entryId: string | null;
  outputConfigNames: string[];
  inputConfigNames: string[];
  fields: Record<string, unknown>;
  createdAt: number;
  projectId: string | null;
}

export type FileStatus = 'NOT_STARTED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';

export interface ProgressStats {
  rowsSucceeded: number;
  rowsFailed: number;
  rowsUnprocessed: number;
}

export interface ProcessorRecord {
  id: string;
  assayRunId: string;
  configName: string;
  fileId: string;
  completeWithErrors: boolean;
  folderId?: string;
  locationId?: string;
  timezone?: string;
  status: FileStatus;
  archiveReason: string | null;
  errorFileId: string | null;
  progress: ProgressStats;
  createdAt: number;
  modifiedAt: number;
}

export interface GeneratorRecord {
  id: string;
  assayRunId: string;
  configName: string;
  fileId: string | null;
  status: FileStatus;
  createdAt: number;
  modifiedAt: number;
}

export interface TaskRecord extends TaskInfo {}

