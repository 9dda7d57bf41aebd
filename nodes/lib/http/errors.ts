/**
 * Errors the pack raises. Every message is written for the person reading the Node-RED debug
 * sidebar, and every message passes through `redact` so no credential ever reaches a log, a
 * status, or msg.error.
 */
import { errorText, type MessageKey, type MessageVars } from '../messages';

export type ErrorCode =
  | 'BAD_INPUT' // the msg or the node's settings are wrong; retrying cannot help
  | 'HTTP' // the server answered with an error status
  | 'RATE_LIMITED' // 429 after all retries
  | 'UNAVAILABLE' // 503 / maintenance after all retries
  | 'TIMEOUT' // no answer in time
  | 'NETWORK' // connection refused / reset / DNS
  | 'BAD_RESPONSE' // the server answered, but not with what the API promises (e.g. an HTML page)
  | 'TASK_FAILED'
  | 'CANCELLED';

export class LabError extends Error {
  readonly code: ErrorCode;
  /** Stable message id in the shared catalogue (`lab-messages.errors.<key>`); nodes translate it. */
  readonly key: MessageKey;
  /** The values the message names (file, status, server's text…), for the translation. */
  readonly vars: MessageVars;
  /** HTTP status, when a server answered. */
  readonly status?: number;
  /** The API's own error object (Benchling: type, message, userMessage, errorId, invalidId). */
  readonly apiError?: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    key: MessageKey,
    vars: MessageVars = {},
    extra: { status?: number; apiError?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(redact(errorText(key, vars)), extra.cause !== undefined ? { cause: extra.cause } : undefined);
    this.name = 'LabError';
    this.code = code;
    this.key = key;
    this.vars = vars;
    this.status = extra.status;
    this.apiError = extra.apiError;
  }

  /** The same error told in another language (the text comes from a translated catalogue). */
  retold(message: string): LabError {
    const copy = new LabError(this.code, this.key, this.vars, { status: this.status, apiError: this.apiError, cause: this.cause });
    copy.message = redact(message);
    return copy;
  }
}

export function badInput(key: MessageKey, vars?: MessageVars): LabError {
  return new LabError('BAD_INPUT', key, vars);
}

export function isCancelled(err: unknown): boolean {
  return err instanceof LabError && err.code === 'CANCELLED';
}

const secretRegistry = new Set<string>();

/**
 * Registers a credential so that `redact` removes it wherever it shows up. Config nodes call this
 * for every secret they hold; short values are ignored (they would mangle ordinary text).
 */
export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 6) {
    secretRegistry.add(secret);
    secretRegistry.add(Buffer.from(`${secret}:`).toString('base64'));
  }
}

export function forgetSecret(secret: string | undefined): void {
  if (!secret) return;
  secretRegistry.delete(secret);
  secretRegistry.delete(Buffer.from(`${secret}:`).toString('base64'));
}

/** Removes registered secrets and anything that looks like an Authorization value. */
export function redact(text: string): string {
  let out = text;
  for (const s of secretRegistry) {
    if (out.includes(s)) out = out.split(s).join('***');
  }
  return out
    .replace(/(authorization["']?\s*[:=]\s*["']?)(basic|bearer)\s+[A-Za-z0-9._~+/=-]+/gi, '$1$2 ***')
    .replace(/\b(Basic|Bearer) [A-Za-z0-9._~+/=-]{8,}/g, '$1 ***')
    .replace(/(access_token|client_secret|api_?key)(["']?\s*[:=]\s*["']?)[^"'&\s,}]+/gi, '$1$2***');
}

/** A one-line, redacted description of anything thrown. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return redact(err.message);
  if (typeof err === 'string') return redact(err);
  try {
    return redact(JSON.stringify(err));
  } catch {
    return 'unknown error';
  }
}

/**
 * An answer's field the API promises and the next call needs (an id, a status…): returned when it
 * is a non-empty string (or a number, for `kind: 'number'`), else BAD_RESPONSE naming the call
 * (`what`, e.g. "Benchling POST /blobs") and the field.
 */
export function requireField<T extends string | number = string>(data: unknown, what: string, field: string, kind: 'string' | 'number' = 'string'): T {
  const v = data && typeof data === 'object' ? (data as Record<string, unknown>)[field] : undefined;
  const ok = kind === 'number' ? typeof v === 'number' && Number.isFinite(v) : typeof v === 'string' && v.trim() !== '';
  if (!ok) throw new LabError('BAD_RESPONSE', 'http.missingField', { what, field: `"${field}"` });
  return v as T;
}
