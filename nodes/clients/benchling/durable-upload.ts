/**
 * The journal side of uploading files as blobs: what `benchling-upload-blob` records per file so
 * that a re-send of the same file (same path, size and mtime) — after a failure or a crash — never
 * uploads a second blob and never forgets one that was started.
 *
 * Per file key one small record: the blob id, `uploading` (journalled before any byte is sent) or
 * `complete`, the size and the time (ms). The Blob object msg needs is rebuilt from the node's
 * settings rather than stored, so 100,000 files of history stay a few tens of bytes each beyond
 * the key. Completed records older than the retention (30 days by default) are dropped;
 * `uploading` ones are kept until finished or aborted.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { HttpClient } from '../../lib/http/client';
import { DEFAULT_RETENTION_MS, Journal, timeOfValue, type JournalOptions } from '../../lib/journal';
import { abortMultipart, guessMimeType, type FileIdentity, type UploadOptions, type UploadResult } from './blob-upload';
import type { Blob } from './types';

export interface UploadRecord {
  state: 'uploading' | 'complete';
  blobId: string;
  size: number;
  /** When recorded: ms since the epoch (journals written before 2026-12 hold an ISO string). */
  at: number | string;
  /** Journals written before 2026-12 kept the whole Blob; read, never written any more. */
  blob?: Blob;
}

export function uploadJournalOptions(retentionMs = DEFAULT_RETENTION_MS): JournalOptions<UploadRecord> {
  return { retention: { maxAgeMs: retentionMs, timeOf: (r) => (r.state === 'complete' ? timeOfValue(r.at) : undefined) } };
}

export function fileKey(file: string, id: FileIdentity): string {
  return `${path.resolve(file)}|${id.size}|${id.mtimeMs}`;
}

/** The file's journal key as it is on disk now, or null when it cannot be read. */
export function currentKey(file: string): { key: string; id: FileIdentity } | null {
  try {
    const st = fs.statSync(file);
    const id = { size: st.size, mtimeMs: st.mtimeMs };
    return { key: fileKey(file, id), id };
  } catch {
    return null; // the upload reports the missing file with a clear message
  }
}

/** The path a key was made from (`<path>|<size>|<mtime>`; the path itself may hold `|`). */
export function keyPath(key: string): string {
  return key.split('|').slice(0, -2).join('|');
}

export interface DurableUploadOptions extends UploadOptions {
  type: NonNullable<UploadOptions['type']>;
}

/**
 * Uploads `file` unless the journal says it is already a COMPLETE blob; an upload recorded as
 * started for the same file is finished instead of starting a second one.
 */
export async function uploadFileDurably(
  upload: (file: string, o: UploadOptions) => Promise<UploadResult>,
  journal: Journal<UploadRecord>,
  file: string,
  o: DurableUploadOptions,
): Promise<UploadResult & { reused: boolean }> {
  const now = currentKey(file);
  const known = now ? journal.get(now.key) : undefined;
  if (now && known?.state === 'complete') {
    const name = o.name || path.basename(file);
    const blob = known.blob ?? { id: known.blobId, name, mimeType: o.mimeType || guessMimeType(name), type: o.type, uploadStatus: 'COMPLETE' };
    return { blob, size: known.size, parts: 0, reused: true };
  }
  // Which key each blob id of this call is recorded under.
  const keys = new Map<string, string>();
  if (now && known) keys.set(known.blobId, now.key);
  const result = await upload(file, {
    ...o,
    resume: now && known ? { blobId: known.blobId, ...now.id } : undefined,
    onMultipartStarted: (blobId, id) => {
      const key = fileKey(file, id);
      keys.set(blobId, key);
      journal.set(key, { state: 'uploading', blobId, size: id.size, at: Date.now() }); // before any part is sent
    },
    onMultipartAborted: (blobId) => {
      const key = keys.get(blobId);
      if (key && journal.get(key)?.blobId === blobId) journal.delete(key);
    },
  });
  const key = keys.get(result.blob.id);
  if (key) journal.set(key, { state: 'complete', blobId: result.blob.id, size: result.size, at: Date.now() });
  return { ...result, reused: false };
}

/**
 * At node start: `uploading` records whose file is gone or changed (its key no longer matches the
 * file on disk) can never be finished: abort them and forget them. The others stay for the re-send.
 */
export async function abortStaleUploads(
  http: () => HttpClient,
  journal: Journal<UploadRecord>,
  onAbortFailed: (blobId: string, err: unknown) => void,
): Promise<number> {
  let aborted = 0;
  for (const [key, rec] of [...journal.entries()]) {
    if (rec.state !== 'uploading' || currentKey(keyPath(key))?.key === key) continue;
    try {
      if (await abortMultipart(http(), rec.blobId, (err) => onAbortFailed(rec.blobId, err))) {
        if (journal.get(key)?.blobId === rec.blobId) journal.delete(key);
        aborted++;
      }
    } catch (err) {
      onAbortFailed(rec.blobId, err); // e.g. no tenant configured
    }
  }
  return aborted;
}
