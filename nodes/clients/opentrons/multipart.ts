/**
 * multipart/form-data bodies for the robot's `POST /protocols`, built as the shared client's
 * StreamBody: files are streamed from disk (or taken from a Buffer) and the exact length is known
 * up front, so nothing large is held in memory. A factory: every retry gets a fresh stream.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Readable } from 'stream';
import type { StreamBody } from '../../lib/http/client';
import { badInput } from '../../lib/http/errors';

/** A file to upload: from disk (`path`) or from memory (`data`), with the name the robot sees. */
export type FileSource = { path: string; name?: string } | { name: string; data: Buffer };

export interface ResolvedFile {
  /** The file name the robot sees (its stem is the 4.x protocol id). */
  name: string;
  size: number;
  path?: string;
  data?: Buffer;
}

export type FormPart = { field: string; value: string } | { field: string; file: ResolvedFile };

/** Checks that a file exists and is a non-empty regular file; fixes its name and size. */
export async function resolveFile(src: FileSource, what: string): Promise<ResolvedFile> {
  if ('data' in src) {
    if (!Buffer.isBuffer(src.data)) throw badInput(`${what}: the data is not a Buffer`);
    const name = safeName(src.name, what);
    return { name, size: src.data.length, data: src.data };
  }
  if (typeof src.path !== 'string' || src.path.trim() === '') throw badInput(`${what}: no file path given`);
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(src.path);
  } catch {
    throw badInput(`${what}: file "${src.path}" does not exist or cannot be read`);
  }
  if (!st.isFile()) throw badInput(`${what}: "${src.path}" is not a file`);
  return { name: safeName(src.name ?? path.basename(src.path), what), size: st.size, path: src.path };
}

function safeName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name.trim() === '') throw badInput(`${what}: a file name is needed (e.g. "protocol.py")`);
  const base = path.basename(name.trim().replace(/\\/g, '/'));
  if (/["\r\n]/.test(base)) throw badInput(`${what}: file name "${base}" contains quotes or line breaks`);
  return base;
}

function contentTypeOf(name: string): string {
  const ext = path.extname(name).toLowerCase();
  if (ext === '.json') return 'application/json';
  if (ext === '.csv') return 'text/csv';
  if (ext === '.py' || ext === '.txt') return 'text/plain';
  return 'application/octet-stream';
}

/** A StreamBody factory for the given parts (fields and files, in order). */
export function multipartBody(parts: FormPart[]): () => StreamBody {
  return () => {
    const boundary = `----labwire${crypto.randomBytes(12).toString('hex')}`;
    const heads: Buffer[] = parts.map((p, i) => {
      const lead = i === 0 ? '' : '\r\n';
      if ('value' in p) {
        return Buffer.from(`${lead}--${boundary}\r\nContent-Disposition: form-data; name="${p.field}"\r\n\r\n`);
      }
      return Buffer.from(
        `${lead}--${boundary}\r\nContent-Disposition: form-data; name="${p.field}"; filename="${p.file.name}"\r\n` +
          `Content-Type: ${contentTypeOf(p.file.name)}\r\n\r\n`,
      );
    });
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    let length = tail.length;
    parts.forEach((p, i) => {
      length += heads[i].length + ('value' in p ? Buffer.byteLength(p.value) : p.file.size);
    });
    async function* generate(): AsyncGenerator<Buffer> {
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i];
        yield heads[i];
        if ('value' in p) yield Buffer.from(p.value);
        else if (p.file.data) yield p.file.data;
        else {
          let sent = 0;
          for await (const chunk of fs.createReadStream(p.file.path!)) {
            sent += (chunk as Buffer).length;
            yield chunk as Buffer;
          }
          if (sent !== p.file.size) throw new Error(`file "${p.file.path}" changed size while it was being uploaded`);
        }
      }
      yield tail;
    }
    return { stream: Readable.from(generate(), { objectMode: false }), length, contentType: `multipart/form-data; boundary=${boundary}` };
  };
}
