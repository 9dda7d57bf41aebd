/**
 * The watcher's settings: checked (a clear, translatable error for the first bad one) and filled
 * in with their defaults.
 */
import * as path from 'path';
import { badInput } from '../../lib/http/errors';
import { DEFAULT_RETRY_POLICY, RetryPolicy } from '../../lib/journey';
import { WatchFilters } from './filters';
import { destinationFolder } from './move';
import { FolderWatcherOptions, isAbsoluteAnywhere, isUncPath, num, PostAction } from './types';

export interface WatcherSettings {
  folder: string;
  mode: 'events' | 'poll';
  recursive: boolean;
  stabilityMs: number;
  pollIntervalMs: number;
  rescanIntervalMs: number;
  folderProbeMs: number;
  statConcurrency: number;
  emitEmptyFiles: boolean;
  filters: WatchFilters;
  postAction: PostAction;
  archiveFolder: string | undefined;
  failedFolder: string | undefined;
  retryPolicy: RetryPolicy;
  retentionMs: number;
}

/** Checks the options (throws `badInput` for the first bad one) and fills in the defaults. */
export function resolveOptions(opts: FolderWatcherOptions): WatcherSettings {
  const given = typeof opts.folder === 'string' ? opts.folder.trim() : '';
  if (!given) throw badInput('folder.notSet');
  if (given.includes('\0')) throw badInput('folder.nulCharacter');
  if (/\$\{[^}]*\}/.test(given)) throw badInput('folder.unresolvedEnv', { folder: given });
  if (!isAbsoluteAnywhere(given)) throw badInput('folder.notAbsolute', { folder: given });
  const folder = isUncPath(given) || !path.isAbsolute(given) ? given : path.resolve(given);

  const mode = opts.mode ?? 'auto';
  if (mode !== 'events' && mode !== 'poll' && mode !== 'auto') throw badInput('folder.badMode', { value: String(mode) });
  const recursive = !!opts.recursive;
  const stabilityMs = num('stabilityMs', opts.stabilityMs, 5000, 0);
  const pollIntervalMs = num('pollIntervalMs', opts.pollIntervalMs, 15000, 50);
  const rescanIntervalMs = num('rescanIntervalMs', opts.rescanIntervalMs, 60000, 0);
  const folderProbeMs = num('folderProbeMs', opts.folderProbeMs, 3000, 20);
  const statConcurrency = Math.max(1, Math.floor(num('statConcurrency', opts.statConcurrency, 32, 1)));

  const filters = new WatchFilters({ folder, recursive, include: opts.include, exclude: opts.exclude, ignoreTempFiles: opts.ignoreTempFiles });

  const post = opts.postAction ?? 'none';
  if (post !== 'none' && post !== 'move' && post !== 'delete') throw badInput('folder.badPostAction', { value: String(post) });
  const ignoredInside = (relPosix: string) => {
    // Inside the watched tree: allowed only where the watcher will never look.
    const segs = relPosix.split('/');
    return !recursive || segs.some((_, i) => filters.dirIgnored(segs.slice(0, i + 1).join('/')));
  };
  const archiveFolder =
    post === 'move'
      ? destinationFolder(
          opts.archiveFolder,
          folder,
          { notSet: 'folder.archiveNotSet', unresolved: 'folder.archiveUnresolvedEnv', notAbsolute: 'folder.archiveNotAbsolute', isWatched: 'folder.archiveIsWatched', inside: 'folder.archiveInside' },
          ignoredInside,
        )
      : undefined;
  const failedFolder =
    opts.failedFolder !== undefined && opts.failedFolder.trim() !== ''
      ? destinationFolder(
          opts.failedFolder,
          folder,
          { notSet: 'folder.failedNotSet', unresolved: 'folder.failedUnresolvedEnv', notAbsolute: 'folder.failedNotAbsolute', isWatched: 'folder.failedIsWatched', inside: 'folder.failedInside' },
          ignoredInside,
        )
      : undefined;
  const r = opts.retry ?? {};
  const retryPolicy: RetryPolicy = {
    baseMs: num('retry.baseMs', r.baseMs, DEFAULT_RETRY_POLICY.baseMs, 1),
    maxMs: num('retry.maxMs', r.maxMs, DEFAULT_RETRY_POLICY.maxMs, 1),
    giveUpAfterMs: num('retry.giveUpAfterMs', r.giveUpAfterMs, DEFAULT_RETRY_POLICY.giveUpAfterMs, 0),
  };
  const retentionMs = num('retentionMs', opts.retentionMs, 30 * 24 * 3600_000, 0);
  return {
    folder,
    mode: mode === 'auto' ? (isUncPath(folder) ? 'poll' : 'events') : mode,
    recursive,
    stabilityMs,
    pollIntervalMs,
    rescanIntervalMs,
    folderProbeMs,
    statConcurrency,
    emitEmptyFiles: !!opts.emitEmptyFiles,
    filters,
    postAction: post,
    archiveFolder,
    failedFolder,
    retryPolicy,
    retentionMs,
  };
}
