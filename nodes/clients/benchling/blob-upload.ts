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
 * Several parts are sent at once (`partsInParallel`, default 3). Each sender owns one base64
 * workspace (one read of READ_SIZE, two of its base64: ~2.9 MB) for all its parts, so an upload
 * allocates `partsInParallel` of them once, whatever the file size, and the base64 is made there
 * without JavaScript strings (../../lib/base64/base64-workspace.ts).
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as http from 'http';
import { Readable, type Writable } from 'stream';
import { badInput, LabError, requireField } from '../../lib/http/errors';
import type { HttpClient, OnWait, StreamBody } from '../../lib/http/client';
import { anySignal } from '../../lib/timing';
import { base64Length, createBase64Workspace, type Base64Workspace } from '../../lib/base64/base64-workspace';
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
 * Bytes read from disk at a time, a multiple of 12 (whole blocks of the base64 encoder; a
 * multiple of 3 keeps a part's base64 the concatenation of its reads' base64). Each read is a
 * round trip to libuv's thread pool (a read never blocks the flow's event loop, even from a slow
 * share); fewer, larger reads cost less CPU, while a read's bytes are still in the CPU's cache
 * for the MD5 and the base64 that follow.
 */
export const READ_SIZE = 786_240;
/** Parts sent at once by default: two keep the link busy while one part's answer comes back. */
export const DEFAULT_PARTS_IN_PARALLEL = 3;
export const MAX_PARTS_IN_PARALLEL = 8;
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
  /** Parts sent at once (1–8; default DEFAULT_PARTS_IN_PARALLEL). */
  partsInParallel?: number;
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

/**
 * Sends every part of the file to the upload `blobId` (up to `partsInParallel` at once) and
 * completes it. The first failure stops the other parts (cancelled, not sent on), and the call
 * settles only once no part is in flight any more: an abort that follows never races a part.
 */
async function sendParts(http: HttpClient, file: string, identity: FileIdentity, blobId: string, partCount: number, o: UploadOptions): Promise<Blob> {
  const parts: BlobPart[] = new Array<BlobPart>(partCount);
  const inParallel = Math.max(1, Math.min(MAX_PARTS_IN_PARALLEL, Math.floor(o.partsInParallel ?? DEFAULT_PARTS_IN_PARALLEL) || 1));
  const stop = new AbortController();
  const signal = anySignal([o.signal, stop.signal]);
  let next = 0;
  let sent = 0;
  let failure: { err: unknown } | undefined;
  o.onProgress?.(0, identity.size);
  const sender = async () => {
    const buffers = new PartBuffers();
    while (!failure && next < partCount) {
      const i = next++;
      const start = i * PART_SIZE;
      const length = Math.min(PART_SIZE, identity.size - start);
      try {
        const res = await http.request<BlobPart>({
          method: 'POST',
          path: `/blobs/${encodeURIComponent(blobId)}/parts`,
          // Sending the same part number again replaces the part: safe to retry.
          idempotent: true,
          priority: 'bulk',
          body: () => {
            assertUnchanged(file, identity);
            return partBody(file, i + 1, start, length, buffers);
          },
          signal: signal.signal,
          onWait: o.onWait,
        });
        // eTags carry literal quotes; they go back exactly as received.
        const what = `Benchling POST /blobs/${blobId}/parts (part ${i + 1})`;
        parts[i] = { partNumber: requireField<number>(res.data, what, 'partNumber', 'number'), eTag: requireField(res.data, what, 'eTag') };
      } catch (err) {
        // The first failure is the one told; the parts it stops fail as cancelled.
        if (!failure) {
          failure = { err };
          stop.abort(err);
        }
        return;
      }
      sent += length;
      o.onProgress?.(sent, identity.size);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(inParallel, partCount) }, sender));
  } finally {
    signal.dispose();
  }
  if (failure) throw failure.err;
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
export function partBody(file: string, partNumber: number, start: number, length: number, buffers = new PartBuffers()): StreamBody {
  const prefix = `{"partNumber":${partNumber},"data64":"`;
  return {
    stream: new PartStream(file, partNumber, prefix, start, length, buffers),
    length: prefix.length + base64Length(length) + MD5_SUFFIX_LENGTH,
    contentType: 'application/json',
  };
}

/**
 * The memory a part body is made in (a base64 workspace), reused part after part: made on first
 * use at the size of a whole read, or of the part when it is smaller. One body at a time: a
 * retry's body waits until the body it replaces has stopped (it is destroyed on failure and stops
 * at its next step), so no read lands in memory the new body is using.
 */
export class PartBuffers {
  private workspace?: Base64Workspace;
  private last: Promise<unknown> = Promise.resolve();

  constructor(private readonly prefer: 'wasm' | 'string' = 'wasm') {}

  /** Runs `use` once the previous user is done. */
  use<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.last.then(fn, fn);
    this.last = run.catch(() => undefined);
    return run;
  }

  /** A workspace whose input holds at least `bytes`. */
  take(bytes: number): Base64Workspace {
    if (!this.workspace || this.workspace.input.length < bytes) this.workspace = createBase64Workspace(bytes, this.prefer);
    return this.workspace;
  }
}

/** Told each piece of a part body; resolves once `chunk`'s memory may be used again. */
type Emit = (chunk: Buffer | string) => Promise<void> | void;

/**
 * A part body as a stream. The HTTP client pipes its body into the request; that pipe is taken
 * as the chance to write straight into the request (`pipe` below): the base64 of each read goes
 * into one of the workspace's two output buffers, used again once the socket has taken them, so a
 * part costs the read, the MD5 and the base64 — no new Buffer or string per chunk (measured: fresh
 * pages cost more system time than the socket writes, strings cost garbage collection).
 * Anything else reading it (another pipe target, `for await`) gets copies, as a plain stream.
 */
class PartStream extends Readable {
  private resumeReading?: () => void;
  private started = false;

  constructor(
    private readonly file: string,
    private readonly partNumber: number,
    private readonly prefix: string,
    private readonly start: number,
    private readonly length: number,
    private readonly buffers: PartBuffers,
  ) {
    super({ highWaterMark: 1, objectMode: true });
  }

  override pipe<T extends NodeJS.WritableStream>(dest: T, options?: { end?: boolean }): T {
    if (!(dest instanceof http.ClientRequest) || this.started) return super.pipe(dest, options);
    this.started = true;
    const req = dest as unknown as Writable;
    let drained: (() => void) | undefined;
    let broken: Error | undefined;
    const onDrain = () => drained?.();
    const onClose = () => {
      broken ??= new Error('request closed');
      drained?.();
    };
    req.on('drain', onDrain);
    req.once('close', onClose);
    const emit: Emit = (chunk) =>
      new Promise<void>((resolve, reject) => {
        if (broken || this.destroyed) return reject(broken ?? new Error('part body destroyed'));
        // Resolves once the socket has taken the chunk (its buffer may then be filled again).
        req.write(chunk, (err) => (err ? reject(err) : resolve()));
      });
    const waitDrain = () =>
      req.writableNeedDrain && !broken
        ? new Promise<void>((resolve) => {
            drained = () => {
              drained = undefined;
              resolve();
            };
          })
        : undefined;
    void this.buffers.use(() => this.produce(emit, waitDrain)).then(
      () => {
        req.off('drain', onDrain);
        req.off('close', onClose);
        if (this.destroyed) return;
        req.end();
        // What a pipe's source does when done: end (the HTTP client waits for it), then close.
        this.push(null);
        this.resume();
      },
      (err: Error) => {
        req.off('drain', onDrain);
        req.off('close', onClose);
        if (!this.destroyed) this.destroy(err);
      },
    );
    return dest;
  }

  override _read(): void {
    if (this.resumeReading) {
      const go = this.resumeReading;
      this.resumeReading = undefined;
      go();
      return;
    }
    if (this.started) return;
    this.started = true;
    const emit: Emit = (chunk) => {
      if (this.destroyed) throw new Error('part body destroyed');
      if (this.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk))) return;
      return new Promise<void>((resolve) => (this.resumeReading = resolve));
    };
    this.buffers.use(() => this.produce(emit, () => undefined)).then(
      () => {
        if (!this.destroyed) this.push(null);
      },
      (err: Error) => {
        if (!this.destroyed) this.destroy(err);
      },
    );
  }

  /**
   * Reads the part, hashing and encoding on the way, and emits prefix, base64 and md5 suffix.
   * The two output buffers take turns: one is filled while the socket takes the other.
   */
  private async produce(emit: Emit, waitDrain: () => Promise<void> | undefined): Promise<void> {
    const { file, partNumber, start, length } = this;
    const hash = createHash('md5');
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(file, 'r');
    } catch (err) {
      throw fileError(err, file);
    }
    try {
      await emit(this.prefix);
      const workspace = this.buffers.take(Math.min(READ_SIZE, length));
      const raw = workspace.input;
      const taken: Array<Promise<void> | void> = [undefined, undefined];
      let slot: 0 | 1 = 0;
      for (let done = 0; done < length; ) {
        if (this.destroyed) throw new Error('part body destroyed');
        const want = Math.min(raw.length, length - done);
        let got = 0;
        while (got < want) {
          const { bytesRead } = await fh.read(raw, got, want - got, start + done + got);
          if (bytesRead === 0) throw badInput('blob.partShort', { file, part: partNumber });
          got += bytesRead;
        }
        hash.update(raw.subarray(0, got));
        await taken[slot]; // this slot's last bytes have left
        const out = workspace.encode(got, slot);
        await waitDrain(); // backpressure: nothing new is written before the socket drains
        const sent = emit(out);
        // A failed write is told by the next wait on it (or the one below), never unhandled.
        if (sent) sent.catch(() => undefined);
        taken[slot] = sent;
        slot = slot === 0 ? 1 : 0;
        done += got;
      }
      await Promise.all(taken);
      await emit(`","md5":"${hash.digest('hex')}"}`);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const go = this.resumeReading;
    this.resumeReading = undefined;
    go?.();
    cb(err);
  }
}
