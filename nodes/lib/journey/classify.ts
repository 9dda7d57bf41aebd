/**
 * What a reported failure means for a file's journey: try again later (transient) or stop and keep
 * the reason for a person (permanent, the dead-letter). One rule for every node of the pack, so the
 * watcher — not each node — decides what happens after a failure.
 */
import { LabError, redact } from '../http/errors';

export type FailureKind = 'transient' | 'permanent';

/** A failure as the journey keeps it: enough for an operator to act without the logs. */
export interface FailureReason {
  /** `msg.error.code` (NETWORK, TIMEOUT, HTTP, TASK_FAILED…), or `FAILED` when the flow gave none. */
  code: string;
  /** HTTP status, where a server answered. */
  status?: number;
  /** The message, with the service's own words (e.g. Benchling's task message). Redacted. */
  message: string;
  /** The node that failed, as the Catch node names it. */
  node?: { id?: string; type?: string; name?: string };
  /** Benchling's error file (the rows that failed), with its download link when one was given. */
  errorFile?: { id?: string; name?: string; downloadURL?: string };
  /** Unix ms. */
  at: number;
}

const TRANSIENT_CODES = new Set(['NETWORK', 'TIMEOUT', 'UNAVAILABLE', 'RATE_LIMITED', 'BAD_RESPONSE', 'CANCELLED']);
const PERMANENT_CODES = new Set(['BAD_INPUT', 'TASK_FAILED']);

/**
 * Transient: the network, a timeout, 429/503, any 5xx, 408, an answer that was not the API's (a
 * proxy's HTML page), or work cut off by a redeploy. Permanent: bad input, a task the service ran
 * and failed, any other 4xx — and anything the pack does not recognise (a function node's own
 * error, an ack:false without a reason): retrying blindly could go on for a day, so a person
 * decides, with the reason in front of them.
 */
export function classifyFailure(reason: Pick<FailureReason, 'code' | 'status'>): FailureKind {
  const { code, status } = reason;
  if (TRANSIENT_CODES.has(code)) return 'transient';
  if (PERMANENT_CODES.has(code)) return 'permanent';
  if (code === 'HTTP' && typeof status === 'number') {
    if (status >= 500 || status === 408 || status === 429) return 'transient';
    return 'permanent';
  }
  return 'permanent';
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** The HTTP status in an error text such as "Benchling POST /blobs: HTTP 502 …", when the code is HTTP. */
function statusInText(text: string): number | undefined {
  const m = /\bHTTP (\d{3})\b/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * The failure a message reports, from what reaches the watcher's input: `msg.labwireFile.failure`
 * (written by the pack's nodes on their error path: code, status and node exactly), else
 * `msg.error` (a Catch node's, or the poll node's FAILED output), else "reported as failed".
 */
export function failureFromMessage(msg: Record<string, unknown>, now = Date.now()): FailureReason {
  const lf = obj(msg.labwireFile);
  const fromNode = obj(lf?.failure);
  const error = obj(msg.error);
  const source = obj(error?.source);
  const message =
    str(error?.message) ?? str(fromNode?.message) ?? (typeof msg.error === 'string' ? msg.error : undefined) ?? 'reported as failed';
  const code = str(fromNode?.code) ?? str(error?.code) ?? 'FAILED';
  let status = typeof fromNode?.status === 'number' ? fromNode.status : typeof error?.status === 'number' ? (error.status as number) : undefined;
  if (status === undefined && code === 'HTTP') status = statusInText(message);
  const reason: FailureReason = { code, message: redact(message), at: now };
  if (status !== undefined) reason.status = status;
  const node = obj(fromNode?.node) ?? source;
  if (node) reason.node = { id: str(node.id), type: str(node.type), name: str(node.name) };
  const ef = obj(error?.errorFile) ?? obj(msg.errorFile);
  if (ef) reason.errorFile = { id: str(ef.id), name: str(ef.name), downloadURL: str(ef.downloadURL) };
  return reason;
}

/** What a pack node records on `msg.labwireFile.failure` before it reports an error with the msg. */
export function failureOfError(err: unknown, node: { id: string; type: string; name?: string }, now = Date.now()): FailureReason {
  const e = err instanceof Error ? err : new Error(String(err));
  const reason: FailureReason = {
    code: err instanceof LabError ? err.code : str((err as { code?: unknown })?.code) ?? 'FAILED',
    message: redact(e.message),
    node: { id: node.id, type: node.type, name: node.name || undefined },
    at: now,
  };
  if (err instanceof LabError && err.status !== undefined) reason.status = err.status;
  return reason;
}
