/**
 * The post-action on an acknowledged file: archive it (move) or delete it, unless it changed after
 * it was sent or is gone already.
 */
import * as fs from 'fs';
import { LabError } from '../../lib/http/errors';
import { moveInto } from './move';
import { errCode, errText, PostAction } from './types';

export interface PostActionResult {
  /** Where the file went, for `move`. */
  archivedTo?: string;
  /** Why the post-action was skipped (the file changed or vanished after it was sent). */
  skipped?: string;
}

/**
 * Applies `action` to the file `full` (`rel` in the watched folder), as sent with `sent`'s size and
 * mtime. Throws a LabError when the file cannot be looked at, moved or deleted.
 */
export async function applyPostAction(
  action: PostAction,
  archiveFolder: string | undefined,
  rel: string,
  full: string,
  sent: { size: number; mtimeMs: number },
): Promise<PostActionResult> {
  let skipped: string | undefined;
  let archivedTo: string | undefined;
  if (action !== 'none') {
    let st: fs.Stats | null = null;
    try {
      st = await fs.promises.stat(full);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') {
        const key = action === 'move' ? 'folder.cannotMove' : 'folder.cannotDelete';
        throw new LabError('UNAVAILABLE', key, { file: full, reason: errText(err) }, { cause: err });
      }
      skipped = 'the file is gone';
    }
    if (st && (st.size !== sent.size || st.mtimeMs !== sent.mtimeMs)) {
      // New content arrived after the ack: leave it; it will be sent as a new version.
      skipped = 'the file changed after it was sent';
    } else if (st && action === 'delete') {
      await fs.promises.unlink(full).catch((err) => {
        if (errCode(err) !== 'ENOENT') throw new LabError('UNAVAILABLE', 'folder.cannotDelete', { file: full, reason: errText(err) }, { cause: err });
      });
    } else if (st && action === 'move') {
      archivedTo = await moveInto(archiveFolder as string, rel, full);
    }
  }
  return { archivedTo, skipped };
}
