// Request plumbing of the Benchling simulator: API errors, replies and routes, body checks and the
// blob content scanner (not part of the public API).
import * as crypto from 'node:crypto';
import type * as http from 'node:http';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface Ctx {
  method: string;
  path: string;
  query: URLSearchParams;
  params: string[];
  body: unknown;
  rawBody: Buffer;
  contentType: string;
  req: http.IncomingMessage;
}

export type Handler = (ctx: Ctx) => Reply | Promise<Reply>;

export interface Route {
  template: string;
  re: RegExp;
  methods: Record<string, Handler>;
  /** no API-key auth (POST /token authenticates the OAuth client itself) */
  noAuth?: boolean;
  /** does not consume from the rate limit */
  noRateLimit?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

export function md5Hex(buf: Buffer): string {
  return crypto.createHash('md5').update(buf).digest('hex');
}

export function randAlnum(n: number): string {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += chars[bytes[i] % chars.length];
  return s;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function badRequest(message: string, extra: Record<string, unknown> = {}): ApiError {
  return new ApiError(400, 'invalid_request_error', message, extra);
}

export function notFound(what: string, id: string): ApiError {
  return new ApiError(404, 'invalid_request_error', `${what} not found: ${id}`, { invalidId: id });
}

/**
 * Unknown IDs on operations whose spec declares only 400 (not 404): answered 400
 * invalid_request_error with invalidId. What real Benchling answers there is UNCONFIRMED.
 */
export function unknownId(what: string, id: string): ApiError {
  return new ApiError(400, 'invalid_request_error', `${what} not found: ${id}`, { invalidId: id });
}

export const BASE64_RE = /^[A-Za-z0-9+/\r\n]*={0,2}[\r\n]*$/;

export function decodeBase64(field: string, s: string): Buffer {
  if (!BASE64_RE.test(s)) throw badRequest(`${field} is not valid base64.`);
  return Buffer.from(s, 'base64');
}

export type FieldKind = 'string' | 'integer' | 'boolean' | 'string[]' | 'string|null' | 'array';

export interface FieldSpec {
  kind: FieldKind;
  required?: boolean;
  enum?: readonly string[];
  maxLength?: number;
  min?: number;
  max?: number;
}

/** Minimal request-body check mirroring the spec schemas (all have additionalProperties false). */
export function checkBody(body: unknown, schemaName: string, fields: Record<string, FieldSpec>): Record<string, unknown> {
  if (body === undefined) throw badRequest(`A JSON request body (${schemaName}) is required.`);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest(`The request body must be a JSON object (${schemaName}).`);
  }
  const obj = body as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (!(k in fields)) throw badRequest(`Unrecognized field "${k}" in ${schemaName} (additional properties are not allowed).`);
  }
  for (const [k, spec] of Object.entries(fields)) {
    const v = obj[k];
    if (v === undefined) {
      if (spec.required) throw badRequest(`Missing required field "${k}" in ${schemaName}.`);
      continue;
    }
    const fail = (what: string) => badRequest(`Field "${k}" in ${schemaName} must be ${what}.`);
    switch (spec.kind) {
      case 'string':
        if (typeof v !== 'string') throw fail('a string');
        break;
      case 'string|null':
        if (v !== null && typeof v !== 'string') throw fail('a string or null');
        break;
      case 'integer':
        if (typeof v !== 'number' || !Number.isInteger(v)) throw fail('an integer');
        if (spec.min !== undefined && v < spec.min) throw fail(`>= ${spec.min}`);
        if (spec.max !== undefined && v > spec.max) throw fail(`<= ${spec.max}`);
        break;
      case 'boolean':
        if (typeof v !== 'boolean') throw fail('a boolean');
        break;
      case 'string[]':
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw fail('an array of strings');
        break;
      case 'array':
        if (!Array.isArray(v)) throw fail('an array');
        break;
    }
    if (spec.enum && !spec.enum.includes(v as string)) throw fail(`one of ${spec.enum.join(', ')}`);
    if (spec.maxLength !== undefined && typeof v === 'string' && v.length > spec.maxLength) {
      throw fail(`at most ${spec.maxLength} characters`);
    }
  }
  return obj;
}

export const BLOB_TYPES = ['RAW_FILE', 'VISUALIZATION'] as const;

export interface ScanResult {
  dataRows: number;
  failLines: number[];
}

/** Streams blob content line by line: counts data rows and finds lines starting with #FAIL. */
export class LineScanner {
  private lineNo = 0;
  private partial = '';
  readonly result: ScanResult = { dataRows: 0, failLines: [] };

  push(chunk: Buffer): void {
    const text = this.partial + chunk.toString('latin1');
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    // keep the carried remainder small: only its start matters
    if (this.partial.length > 64) this.partial = this.partial.slice(0, 64) + 'x';
    for (const l of lines) this.line(l);
  }

  end(): ScanResult {
    if (this.partial.length > 0) this.line(this.partial);
    this.partial = '';
    return this.result;
  }

  private line(l: string): void {
    this.lineNo++;
    const t = l.replace(/\r$/, '');
    if (t.slice(0, 5).toUpperCase() === '#FAIL') {
      this.result.failLines.push(this.lineNo);
      return;
    }
    if (this.lineNo === 1 || t.trim() === '' || t.startsWith('#')) return;
    this.result.dataRows++;
  }
}

