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
import { badInput, LabError } from '../../lib/http/errors';
import type { MessageVars } from '../../lib/messages';

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

/** Which file of a run is being checked, for the message: the protocol, support file `n` (1-based), or a CSV parameter's file. */
export type FileRole = { file: 'protocol' } | { file: 'support'; n: number } | { file: 'parameter'; param: string };

/** The message id for a problem with the file, by its role (`ot2.protocolFile.*` / `ot2.supportFile.*`). */
function fileProblem(role: FileRole, problem: 'notBuffer' | 'noPath' | 'notFound' | 'notAFile' | 'nameNeeded' | 'badName', vars: MessageVars = {}): LabError {
  if (role.file === 'parameter') return badInput(`ot2.parameterFile.${problem}` as const, { ...vars, param: role.param });
  return role.file === 'protocol' ? badInput(`ot2.protocolFile.${problem}` as const, vars) : badInput(`ot2.supportFile.${problem}` as const, { ...vars, n: role.n });
}

/** Checks that a file exists and is a non-empty regular file; fixes its name and size. */
export async function resolveFile(src: FileSource, role: FileRole): Promise<ResolvedFile> {
  if ('data' in src) {
    if (!Buffer.isBuffer(src.data)) throw fileProblem(role, 'notBuffer');
    const name = safeName(src.name, role);
    return { name, size: src.data.length, data: src.data };
  }
  if (typeof src.path !== 'string' || src.path.trim() === '') throw fileProblem(role, 'noPath');
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(src.path);
  } catch {
    throw fileProblem(role, 'notFound', { path: src.path });
  }
  if (!st.isFile()) throw fileProblem(role, 'notAFile', { path: src.path });
  return { name: safeName(src.name ?? path.basename(src.path), role), size: st.size, path: src.path };
}

function safeName(name: unknown, role: FileRole): string {
  if (typeof name !== 'string' || name.trim() === '') throw fileProblem(role, 'nameNeeded');
  const base = path.basename(name.trim().replace(/\\/g, '/'));
  if (/["\r\n]/.test(base)) throw fileProblem(role, 'badName', { name: base });
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
          if (sent !== p.file.size) throw new LabError('BAD_INPUT', 'ot2.fileChangedSize', { path: p.file.path! });
        }
      }
      yield tail;
    }
    return { stream: Readable.from(generate(), { objectMode: false }), length, contentType: `multipart/form-data; boundary=${boundary}` };
  };
}
