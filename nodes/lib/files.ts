/** File-name helpers shared by nodes that write files. */
import * as path from 'path';

/** A blob name as a safe file name: no folders, no characters Windows refuses. */
export function safeFileName(name: string): string {
  const base = path.basename(name.replace(/\\/g, '/')).replace(/[<>:"|?*\x00-\x1f]/g, '_').trim();
  return base && base !== '.' && base !== '..' ? base : 'input-file';
}
