/**
 * Uploading a file as a Benchling blob, with memory that stays flat whatever the file size.
 *
 * A file from disk always goes through the multipart upload — `:start-multipart-upload`, parts
 * streamed from disk, `:complete-upload` — even when it fits in one part ("each part must be at
 * least 5MB, except the last (or only) part"). The reason is recovery: the blob id is known (and
 * can be journalled by the caller through `onMultipartStarted`) before any byte is sent, so a
 * lost answer or a crash later on never leaves a blob nobody knows (blobs cannot be searched).
 * The one request whose answer can still be lost unseen is the start itself, and what it leaves
 * is an empty upload that never completes. A single `POST /blobs` whose answer is lost leaves a
 * COMPLETE blob holding the whole file. The price is two extra requests per file.
 *
 * An upload recorded earlier for the same file (`resume`) is finished instead of starting anew:
 * Benchling is asked where it stands (`GET /blobs/{id}`): COMPLETE means the completion's answer
 * was lost, so the blob is used as it is; IN_PROGRESS means the parts are sent again (sending a
 * part number again replaces it) and the upload is completed; ABORTED or unknown (expired) means
 * a new upload is started.
 *
 * A part's JSON body is never built in memory: it is streamed as
 * `{"partNumber":n,"data64":"<base64 streamed from disk>","md5":"<hex computed on the way>"}` —
 * md5 goes last, so it can be computed while the bytes are sent — with an exact Content-Length
 * (base64 length is known from the byte count), and the socket's backpressure paces the reads.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Readable } from 'stream';
import { badInput, LabError, requireField } from '../../lib/http/errors';
import type { HttpClient, OnWait, StreamBody } from '../../lib/http/client';
import type { Blob, BlobPart, BlobType } from './types';

/** Largest Buffer sent as one `POST /blobs` (Benchling's own example switches to multipart above int(10e6)). */
export const SINGLE_PART_MAX = 10_000_000;
/**
 * Bytes per part. The reference leaves open whether the 5 MB minimum is 10^6 or MiB and whether
 * parts over 10 MB are refused (both UNCONFIRMED), so parts stay between 5,242,880 and
 * 10,000,000 bytes, which meets every reading. 9,999,999 is a multiple of 3, so each part's
 * base64 is the concatenation of its chunks' base64 with no carry between chunks.
 */
export const PART_SIZE = 9_999_999;
export const MIN_PART_SIZE = 5_242_880;
export const MAX_PARTS = 10_000;
/**
 * Read size: a multiple of 3 (see PART_SIZE). Its base64 (524,288 chars) stays under Node's
 * threshold (1,031,913 chars) above which `toString('base64')` makes an external string: those
 * are freed only once V8's 64 MB external-memory allowance is used up, so RSS grew by ~64 MB.
 */
export const CHUNK_SIZE = 3 * 128 * 1024;
const MD5_SUFFIX_LENGTH = '","md5":"'.length + 32 + '"}'.length;

export interface UploadOptions {
  /** Blob name; default the file's base name. */
  name?: string;
  /** Default: guessed from the extension, else application/octet-stream. */
  mimeType?: string;
  type?: BlobType;
  signal?: AbortSignal;
  onProgress?: (sentBytes: number, totalBytes: number) => void;
  onWait?: OnWait;
  /**
   * Called as soon as a multipart upload has a blob id, before any part is sent, with the size
   * and mtime of the file being sent, so the id can be recorded durably (synchronously).
   */
  onMultipartStarted?: (blobId: string, file: FileIdentity) => void;
  /** Called when an upload this call started or resumed is settled for good (aborted, or gone): it can be forgotten. */
  onMultipartAborted?: (blobId: string) => void;
  /** A multipart upload recorded earlier for this file, as it was then: finished rather than started anew. */
  resume?: { blobId: string } & FileIdentity;
}

export interface UploadResult {
  blob: Blob;
  size: number;
  parts: number;
  /** Hex MD5 of the whole file (single-part uploads, where Benchling requires it). */
  md5?: string;
  /** True when an upload recorded earlier was finished (or found finished) rather than a new one started. */
  resumed?: boolean;
}

const MIME_TYPES: Record<string, string> = {
  '.csv': 'text/csv',
  '.tsv': 'text/tab-separated-values',
  '.txt': 'text/plain',
  '.json': 'application/json',
  '.xml': 'application/xml',
  '.pdf': 'application/pdf',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.xlsx': 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  '.xls': 'application/vnd.ms-excel',
  '.zip': 'application/zip',
  '.html': 'text/html',
};

export function guessMimeType(name: string): string {
  return MIME_TYPES[path.extname(name).toLowerCase()] ?? 'application/octet-stream';
}

export function base64Length(bytes: number): number {
  return 4 * Math.ceil(bytes / 3);
}

export interface FileIdentity {
  size: number;
  mtimeMs: number;
}

function statFile(file: string): fs.Stats {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw badInput('blob.notRegularFile', { file });
    return st;
  } catch (err) {
    throw fileError(err, file);
  }
}

function fileError(err: unknown, file: string): LabError {
  if (err instanceof LabError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return badInput('blob.fileGone', { file });
  if (code === 'EACCES' || code === 'EPERM') return badInput('blob.permissionDenied', { file });
  if (code === 'EBUSY') return badInput('blob.fileLocked', { file });
  return badInput('blob.unreadable', { file, reason: (err as Error).message });
}

function assertUnchanged(file: string, before: FileIdentity): void {
  const now = statFile(file);
  if (now.size !== before.size || now.mtimeMs !== before.mtimeMs) {
    throw badInput('blob.changedWhileUploading', { file, before: before.size, now: now.size });
  }
}

/** Uploads a file from disk (always multipart, see the top of this file). */
export async function uploadFile(http: HttpClient, file: string, o: UploadOptions = {}): Promise<UploadResult> {
  const st = statFile(file);
  const identity = { size: st.size, mtimeMs: st.mtimeMs };
  if (st.size === 0) throw badInput('blob.fileEmpty', { file });
  const name = o.name || path.basename(file);
  return uploadMultipart(http, file, identity, { ...o, name });
}

/**
 * Uploads bytes already in memory (≤ 10 MB as one request, larger ones refused). This stays one
 * `POST /blobs`: a Buffer has no identity a journal could be keyed on (no path, size and mtime;
 * the same bytes may legitimately be uploaded twice under different names), so a multipart start
 * recorded for it could never be matched to a re-send. The flow that made the Buffer is the one
 * that can retry it.
 */
export async function uploadBuffer(http: HttpClient, bytes: Buffer, o: UploadOptions & { name: string }): Promise<UploadResult> {
  if (bytes.length === 0) throw badInput('blob.bufferEmpty', { name: o.name });
  if (bytes.length > SINGLE_PART_MAX) {
    throw badInput('blob.bufferTooLarge', { name: o.name, size: bytes.length });
  }
  const md5 = createHash('md5').update(bytes).digest('hex');
  o.onProgress?.(0, bytes.length);
  const res = await http.request<Blob>({
    method: 'POST',
    path: '/blobs',
    json: {
      name: o.name,
      type: o.type ?? 'RAW_FILE',
      mimeType: o.mimeType || guessMimeType(o.name),
      md5,
      data64: bytes.toString('base64'),
    },
    signal: o.signal,
    onWait: o.onWait,
  });
  requireField(res.data, 'Benchling POST /blobs', 'id');
  o.onProgress?.(bytes.length, bytes.length);
  return { blob: res.data, size: bytes.length, parts: 1, md5 };
}

/**
 * A refusal by Benchling of this very request (4xx), as opposed to a failure that says nothing
 * about the upload (network, timeout, 5xx, rate limit, credentials): the upload cannot go on.
 */
function isRefusal(err: unknown): boolean {
  const status = err instanceof LabError && err.code === 'HTTP' ? err.status ?? 0 : 0;
  return status >= 400 && status < 500 && ![401, 403, 408, 429].includes(status);
}

/**
 * Failures after which a started upload is aborted: the file changed or cannot be read, or
 * Benchling refused (4xx). Anything else — network, timeout, 5xx, 429/503 after the retries, the
 * node closing — keeps the upload: the server may have acted, the blob id is recorded, and when
 * the same file is sent again its parts go to the same blob and it is completed.
 */
function isPermanent(err: unknown): boolean {
  return (err instanceof LabError && err.code === 'BAD_INPUT') || isRefusal(err);
}

async function uploadMultipart(http: HttpClient, file: string, identity: FileIdentity, o: UploadOptions & { name: string }): Promise<UploadResult> {
  const partCount = Math.ceil(identity.size / PART_SIZE);
  if (partCount > MAX_PARTS) {
    throw badInput('blob.tooManyParts', { file, size: identity.size, maxParts: MAX_PARTS, maxBytes: MAX_PARTS * PART_SIZE });
  }
  /** Aborts and, once Benchling has nothing left in progress, lets the caller forget the id. */
  const forget = async (blobId: string): Promise<boolean> => {
    const settled = await abortMultipart(http, blobId);
    if (settled) o.onMultipartAborted?.(blobId);
    return settled;
  };
  let resumed: string | undefined;
  if (o.resume && (o.resume.size !== identity.size || o.resume.mtimeMs !== identity.mtimeMs)) {
    await forget(o.resume.blobId); // recorded for another version of the file
  } else if (o.resume) {
    let blob: Blob | undefined;
    try {
      blob = (await http.request<Blob>({ method: 'GET', path: `/blobs/${encodeURIComponent(o.resume.blobId)}`, signal: o.signal, onWait: o.onWait })).data;
    } catch (err) {
      if (!isRefusal(err)) throw err; // unknown to Benchling (expired?): start anew
    }
    if (blob?.uploadStatus === 'COMPLETE') {
      // The completion reached Benchling but its answer did not reach us.
      o.onProgress?.(identity.size, identity.size);
      return { blob, size: identity.size, parts: partCount, resumed: true };
    }
    if (blob?.uploadStatus === 'IN_PROGRESS') resumed = o.resume.blobId;
    else o.onMultipartAborted?.(o.resume.blobId);
  }
  if (resumed) {
    try {
      const blob = await sendParts(http, file, identity, resumed, partCount, o);
      return { blob, size: identity.size, parts: partCount, resumed: true };
    } catch (err) {
      if (!isPermanent(err)) throw err; // kept for the next re-send
      // Refused (aborted or expired meanwhile): once it is settled, a new upload is started below,
      // recorded first. If the abort could not be sent, the id stays recorded for the next attempt.
      if (!(await forget(resumed)) || !isRefusal(err)) throw err;
    }
  }
  const started = await http.request<Blob>({
    method: 'POST',
    path: '/blobs:start-multipart-upload',
    json: { name: o.name, type: o.type ?? 'RAW_FILE', mimeType: o.mimeType || guessMimeType(o.name) },
    signal: o.signal,
    onWait: o.onWait,
  });
  const blobId = requireField(started.data, 'Benchling POST /blobs:start-multipart-upload', 'id');
  o.onMultipartStarted?.(blobId, identity);
  try {
    const blob = await sendParts(http, file, identity, blobId, partCount, o);
    return { blob, size: identity.size, parts: partCount };
  } catch (err) {
    if (isPermanent(err)) await forget(blobId);
    throw err;
  }
}

/** Sends every part of the file to the upload `blobId` and completes it. */
async function sendParts(http: HttpClient, file: string, identity: FileIdentity, blobId: string, partCount: number, o: UploadOptions): Promise<Blob> {
  const parts: BlobPart[] = [];
  let sent = 0;
  o.onProgress?.(0, identity.size);
  for (let i = 0; i < partCount; i++) {
    const start = i * PART_SIZE;
    const length = Math.min(PART_SIZE, identity.size - start);
    const res = await http.request<BlobPart>({
      method: 'POST',
      path: `/blobs/${encodeURIComponent(blobId)}/parts`,
      // Sending the same part number again replaces the part: safe to retry.
      idempotent: true,
      body: () => {
        assertUnchanged(file, identity);
        return partBody(file, i + 1, start, length);
      },
      signal: o.signal,
      onWait: o.onWait,
    });
    // eTags carry literal quotes; they go back exactly as received.
    const what = `Benchling POST /blobs/${blobId}/parts (part ${i + 1})`;
    parts.push({ partNumber: requireField<number>(res.data, what, 'partNumber', 'number'), eTag: requireField(res.data, what, 'eTag') });
    sent += length;
    o.onProgress?.(sent, identity.size);
  }
  assertUnchanged(file, identity);
  // Not idempotent for the HTTP client (a repeat after success is refused), so a lost answer is an
  // error; the next attempt finds the blob COMPLETE (see `resume`).
  const done = await http.request<Blob>({
    method: 'POST',
    path: `/blobs/${encodeURIComponent(blobId)}:complete-upload`,
    json: { parts },
    signal: o.signal,
    onWait: o.onWait,
  });
  requireField(done.data, `Benchling POST /blobs/${blobId}:complete-upload`, 'id');
  return done.data;
}

/**
 * Best effort: tells Benchling to drop an unfinished multipart upload. True when nothing is left
 * in progress: aborted now, or refused because it is already finished, aborted or unknown.
 * False when Benchling could not be asked (network, 5xx…): the caller keeps the id to try again.
 */
export async function abortMultipart(http: HttpClient, blobId: string, onError?: (err: unknown) => void): Promise<boolean> {
  try {
    // abortMultipartBlob declares no request body: send none (not `{}`, which a validating proxy refuses with 415).
    await http.request({ method: 'POST', path: `/blobs/${encodeURIComponent(blobId)}:abort-upload`, idempotent: true });
    return true;
  } catch (err) {
    if (isRefusal(err)) return true;
    onError?.(err);
    return false;
  }
}

/** The streamed JSON body of one part. */
export function partBody(file: string, partNumber: number, start: number, length: number): StreamBody {
  const prefix = `{"partNumber":${partNumber},"data64":"`;
  async function* generate(): AsyncGenerator<string | Buffer> {
    yield prefix;
    const hash = createHash('md5');
    let carry: Buffer | null = null;
    let read = 0;
    const stream = fs.createReadStream(file, { start, end: start + length - 1, highWaterMark: CHUNK_SIZE });
    for await (const raw of stream as AsyncIterable<Buffer>) {
      hash.update(raw);
      read += raw.length;
      const chunk: Buffer = carry ? Buffer.concat([carry, raw]) : raw;
      const whole = chunk.length - (chunk.length % 3);
      carry = whole < chunk.length ? Buffer.from(chunk.subarray(whole)) : null;
      // As a latin1 Buffer: a string would be re-encoded by the socket as UTF-8, which costs more
      // CPU than this copy (Node sizes that scratch space at 3 bytes per char).
      if (whole > 0) yield Buffer.from(chunk.toString('base64', 0, whole), 'latin1');
    }
    if (read !== length) throw badInput('blob.partShort', { file, part: partNumber });
    if (carry) yield carry.toString('base64');
    yield `","md5":"${hash.digest('hex')}"}`;
  }
  return {
    // One chunk queued (object mode's default is 16), so memory does not grow with the backlog.
    stream: Readable.from(generate(), { highWaterMark: 1 }),
    length: prefix.length + base64Length(length) + MD5_SUFFIX_LENGTH,
    contentType: 'application/json',
  };
}
