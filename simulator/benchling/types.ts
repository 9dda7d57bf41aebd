// Public types of the Benchling simulator (re-exported by simulator/benchling and simulator/index).
import type { FaultKind, FaultProbabilities, FaultTimings } from './faults';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

export interface RateLimitOptions {
  limit: number;
  windowMs: number;
}

/** One request/response pair, handed to the `validator` hook after the response was sent. */
export interface SimExchange {
  method: string;
  /** Full path including /api/v2, without the query string. */
  path: string;
  query: Record<string, string>;
  /** Request content type (lower case, no parameters), '' when absent. */
  requestContentType: string;
  /**
   * Parsed request body (JSON, or the form fields for /token); undefined when there was none.
   * Huge base64 `data64` strings are replaced by a short valid base64 string ('AA==').
   */
  requestBody?: unknown;
  /** Set when the body was not handed over (e.g. 'too-large', 'not-json'). */
  requestBodySkipped?: string;
  /** Raw length of the request body in bytes (0 when none was sent). */
  requestBodyBytes?: number;
  status: number;
  responseContentType: string;
  /** The JSON object sent (not re-parsed); undefined for non-JSON answers. */
  responseBody?: unknown;
}

export interface BenchlingSimOptions {
  /** 0 (default) = random free port. */
  port?: number;
  host?: string;
  /** Valid API keys (HTTP Basic user name, empty password). Default ['sk_sim_DEMO_KEY_not_secret']. */
  apiKeys?: string[];
  /** Per-tenant rate limit shared by all callers. Default 60 per 30 s (documented default); false = off. */
  rateLimit?: RateLimitOptions | false;
  /** Probabilistic faults (shares of requests); see simulator/benchling/faults.ts. */
  faults?: FaultProbabilities;
  /** Delays of the 'slow' and 'trickle' faults. */
  faultTimings?: FaultTimings;
  /** Random source for fault draws (default Math.random); pass a seeded one for repeatable runs. */
  random?: () => number;
  /** How long a :process-output / :generate-input task stays RUNNING. Default 1500 ms. */
  taskDurationMs?: number;
  /** Lifetime of pre-signed download URLs. Default 300 s. */
  downloadUrlTtlSec?: number;
  /** Called for every /api/v2 request/response pair. Exceptions are caught and kept in validatorErrors. */
  validator?: (exchange: SimExchange) => void;
  /** Page size of list endpoints that take no pageSize parameter. Default 50. */
  listPageSize?: number;
  /** Largest accepted request body in bytes (413 above). Default 20 MiB. */
  maxBodyBytes?: number;
  /** OAuth client-credentials clients accepted by POST /token (hook; empty by default). */
  oauthClients?: Array<{ clientId: string; clientSecret: string }>;
  /** Lifetime of issued bearer tokens. Default 900 s. */
  tokenTtlSec?: number;
  /** Seed the demo schema and runs (default true). */
  seed?: boolean;
}

export interface RequestLogEntry {
  seq: number;
  method: string;
  path: string;
  /** 0 when no answer was sent (reset / hang / client gone). */
  status: number;
  /** Unix ms at which the request arrived. */
  time: number;
  durationMs: number;
  fault?: FaultKind;
  /**
   * After-handling faults ('resetAfter', '500After', 'htmlAfter'): the status of the real answer
   * that was handled and then lost. Also set for 'slow' / 'trickle' (the real answer).
   */
  handledStatus?: number;
  /** The answer was a 429 from the simulator's rate limiter (not an injected '429'). */
  rateLimited?: boolean;
}

export interface SimCounters {
  requests: number;
  /** 429 answers from the rate limiter (not injected ones). */
  rateLimited: number;
  /** Injected faults by kind (deterministic and probabilistic). */
  faults: Record<FaultKind, number>;
  byStatus: Record<string, number>;
}

export interface BlobPartInfo {
  partNumber: number;
  size: number;
  md5: string;
  eTag: string;
}

export interface BlobInfo {
  id: string;
  name: string;
  type: 'RAW_FILE' | 'VISUALIZATION';
  mimeType: string;
  uploadStatus: 'IN_PROGRESS' | 'COMPLETE' | 'ABORTED';
  multipart: boolean;
  /** Hex MD5 of the whole blob (set when COMPLETE). */
  md5?: string;
  /** Byte size of the whole blob (set when COMPLETE). */
  size?: number;
  /** Uploaded parts (multipart), or after completion the parts that make up the blob. */
  parts: BlobPartInfo[];
  /** Whether the bytes are held in memory (blobs ≤ 10,000,000 bytes). */
  inMemory: boolean;
  createdAt: string;
}

export interface AddAssayRunOptions {
  id?: string;
  schemaId?: string;
  schemaName?: string;
  entryId?: string | null;
  outputConfigNames?: string[];
  inputConfigNames?: string[];
  fields?: Record<string, unknown>;
  /** Unix ms; default now. */
  createdAt?: number;
  projectId?: string | null;
}

export type TaskStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED';

export interface TaskInfo {
  id: string;
  kind: 'process-output' | 'generate-input';
  targetId: string;
  status: TaskStatus;
  message?: string;
  response?: Record<string, unknown>;
  createdAt: number;
  finishedAt?: number;
}


/** An output processor as the chaos counts need it (one row per processor). */
export interface ProcessorInfo {
  id: string;
  assayRunId: string;
  configName: string;
  /** The processed blob. */
  fileId: string;
  /** That blob's name ('' when the blob is unknown). */
  fileName: string;
  status: 'NOT_STARTED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  archived: boolean;
  errorFileId: string | null;
  /** Ids of the :process-output tasks started for it, oldest first. */
  taskIds: string[];
  createdAt: string;
}
