/**
 * Moving a file out of the watched folder into another one (the archive after an ack, the failed
 * folder after a dead-letter), keeping its relative path and never overwriting: a taken name gets
 * `-1`, `-2`… Works across volumes (copy, then unlink).
 */
import * as fs from 'fs';
import * as path from 'path';
import { LabError } from '../../lib/http/errors';

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function cannotMoveTo(file: string, target: string, err: unknown): LabError {
  return new LabError('UNAVAILABLE', 'folder.cannotMoveTo', { file, target, reason: errText(err) }, { cause: err });
}

/** Moves `full` (at `rel` inside the watched folder) to `<targetRoot>/<rel>`; resolves with where it went. */
export async function moveInto(targetRoot: string, rel: string, full: string): Promise<string> {
  const target = path.join(targetRoot, ...rel.split('/'));
  try {
    await fs.promises.mkdir(path.dirname(target), { recursive: true });
  } catch (err) {
    throw new LabError('UNAVAILABLE', 'folder.cannotCreateArchive', { file: full, folder: path.dirname(target), reason: errText(err) }, { cause: err });
  }
  const ext = path.extname(target);
  const stem = target.slice(0, target.length - ext.length);
  for (let n = 0; n < 10000; n++) {
    const dest = n === 0 ? target : `${stem}-${n}${ext}`;
    try {
      // Claim the name first (wx fails if it exists), then move over the empty placeholder.
      const fh = await fs.promises.open(dest, 'wx');
      await fh.close();
    } catch (err) {
      if (errCode(err) === 'EEXIST') continue;
      throw cannotMoveTo(full, dest, err);
    }
    try {
      await fs.promises.rename(full, dest);
    } catch (err) {
      if (errCode(err) === 'EXDEV') {
        try {
          await fs.promises.copyFile(full, dest);
          await fs.promises.unlink(full);
        } catch (copyErr) {
          throw cannotMoveTo(full, dest, copyErr);
        }
      } else {
        await fs.promises.unlink(dest).catch(() => undefined);
        throw cannotMoveTo(full, dest, err);
      }
    }
    return dest;
  }
  throw new LabError('UNAVAILABLE', 'folder.noFreeName', { file: full, folder: path.dirname(target) });
}

/**
 * Checks a destination folder setting (archive or failed folder): absolute, resolved, not the
 * watched folder, and not inside it unless the watcher never looks there (`ignoredInside`).
 */
export function destinationFolder(
  value: string | undefined,
  watched: string,
  keys: { notSet: 'folder.archiveNotSet'; unresolved: 'folder.archiveUnresolvedEnv'; notAbsolute: 'folder.archiveNotAbsolute'; isWatched: 'folder.archiveIsWatched'; inside: 'folder.archiveInside' } | { notSet: 'folder.failedNotSet'; unresolved: 'folder.failedUnresolvedEnv'; notAbsolute: 'folder.failedNotAbsolute'; isWatched: 'folder.failedIsWatched'; inside: 'folder.failedInside' },
  ignoredInside: (relPosix: string) => boolean,
): string {
  const v = (value ?? '').trim();
  if (!v) throw new LabError('BAD_INPUT', keys.notSet);
  if (/\$\{[^}]*\}/.test(v)) throw new LabError('BAD_INPUT', keys.unresolved, { folder: v });
  if (!path.isAbsolute(v) && !path.win32.isAbsolute(v)) throw new LabError('BAD_INPUT', keys.notAbsolute, { folder: v });
  const resolved = path.isAbsolute(v) ? path.resolve(v) : v;
  const rel = path.relative(watched, resolved);
  if (rel === '') throw new LabError('BAD_INPUT', keys.isWatched);
  if (!rel.startsWith('..') && !path.isAbsolute(rel)) {
    const relPosix = rel.split(path.sep).join('/');
    if (!ignoredInside(relPosix)) throw new LabError('BAD_INPUT', keys.inside, { archive: resolved, relative: relPosix });
  }
  return resolved;
}
