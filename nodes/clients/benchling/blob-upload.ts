/**
 * Uploading a file as a Benchling blob, with memory that stays flat whatever the file size.
 *
 * ≤ 10,000,000 bytes: one `POST /blobs` (Benchling's own example switches to multipart above
 * int(10e6)). Above: `:start-multipart-upload`, parts streamed from disk, `:complete-upload`, and
 * `:abort-upload` if anything fails. A part's JSON body is never built in memory: it is streamed as
 * `{"partNumber":n,"data64":"<base64 streamed from disk>","md5":"<hex computed on the way>"}` —
 * md5 goes last, so it can be computed while the bytes are sent — with an exact Content-Length
 * (base64 length is known from the byte count), and the socket's backpressure paces the reads.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Readable } from 'stream';
import { badInput, LabError } from '../../lib/http/errors';
import type { HttpClient, OnWait, StreamBody } from '../../lib/http/client';
import type { Blob, BlobPart, BlobType } from './types';

/** Largest file sent as one `POST /blobs`. */
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
  /** Called as soon as a multipart upload has a blob id (so it can be recorded durably). */
  onMultipartStarted?: (blobId: string) => void;
}

export interface UploadResult {
  blob: Blob;
  size: number;
  parts: number;
  /** Hex MD5 of the whole file (single-part uploads, where Benchling requires it). */
  md5?: string;
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

interface FileIdentity {
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

/** Uploads a file from disk, choosing single or multipart by size. */
export async function uploadFile(http: HttpClient, file: string, o: UploadOptions = {}): Promise<UploadResult> {
  const st = statFile(file);
  const identity = { size: st.size, mtimeMs: st.mtimeMs };
  if (st.size === 0) throw badInput('blob.fileEmpty', { file });
  const name = o.name || path.basename(file);
  if (st.size <= SINGLE_PART_MAX) {
    let bytes: Buffer;
    try {
      bytes = await fs.promises.readFile(file, { signal: o.signal });
    } catch (err) {
      throw fileError(err, file);
    }
    if (bytes.length !== identity.size) throw badInput('blob.changedWhileReading', { file });
    assertUnchanged(file, identity);
    return uploadBuffer(http, bytes, { ...o, name });
  }
  return uploadMultipart(http, file, identity, { ...o, name });
}

/** Uploads bytes already in memory (≤ 10 MB as one request, larger ones refused). */
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
  o.onProgress?.(bytes.length, bytes.length);
  return { blob: res.data, size: bytes.length, parts: 1, md5 };
}

async function uploadMultipart(http: HttpClient, file: string, identity: FileIdentity, o: UploadOptions & { name: string }): Promise<UploadResult> {
  const partCount = Math.ceil(identity.size / PART_SIZE);
  if (partCount > MAX_PARTS) {
    throw badInput('blob.tooManyParts', { file, size: identity.size, maxParts: MAX_PARTS, maxBytes: MAX_PARTS * PART_SIZE });
  }
  const started = await http.request<Blob>({
    method: 'POST',
    path: '/blobs:start-multipart-upload',
    json: { name: o.name, type: o.type ?? 'RAW_FILE', mimeType: o.mimeType || guessMimeType(o.name) },
    signal: o.signal,
    onWait: o.onWait,
  });
  const blobId = started.data.id;
  o.onMultipartStarted?.(blobId);
  try {
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
      parts.push({ partNumber: res.data.partNumber, eTag: res.data.eTag });
      sent += length;
      o.onProgress?.(sent, identity.size);
    }
    assertUnchanged(file, identity);
    const done = await http.request<Blob>({
      method: 'POST',
      path: `/blobs/${encodeURIComponent(blobId)}:complete-upload`,
      json: { parts },
      signal: o.signal,
      onWait: o.onWait,
    });
    return { blob: done.data, size: identity.size, parts: partCount };
  } catch (err) {
    await abortMultipart(http, blobId);
    throw err;
  }
}

/** Best effort: tells Benchling to drop an unfinished multipart upload. */
export async function abortMultipart(http: HttpClient, blobId: string): Promise<boolean> {
  try {
    await http.request({ method: 'POST', path: `/blobs/${encodeURIComponent(blobId)}:abort-upload`, json: {}, idempotent: true });
    return true;
  } catch {
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
