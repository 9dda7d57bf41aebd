/**
 * What `lab-watch-folder` reads from its settings and its input messages, apart from the node
 * itself: the FolderWatcher options (seconds, hours and days from the editor; `${ENV}` in folders)
 * and which file a message names (an acknowledgement, a retry or a skip).
 */
import * as path from 'path';
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { FileRef, FolderWatcherOptions, PostAction, WatchMode } from '../clients/folder-watcher';
import { stateFilePath } from './journal';
import { expandEnv, Msg, type Translate } from './node-red';
import type { Settings } from './settings';

export interface WatchFolderDef extends NodeDef {
  folder: string;
  include?: string;
  exclude?: string;
  recursive?: boolean;
  mode?: WatchMode;
  pollInterval?: string | number;
  stability?: string | number;
  rescanInterval?: string | number;
  probeInterval?: string | number;
  postAction?: PostAction;
  archiveFolder?: string;
  emitEmpty?: boolean;
  ignoreTemp?: boolean;
  retryBase?: string | number;
  retryMax?: string | number;
  giveUpAfter?: string | number;
  failedFolder?: string;
  retention?: string | number;
}

/**
 * The watcher's options from the node's settings. An unusable number is collected in `s` (the
 * caller checks `s.problem()` before using the options); a bad folder throws a LabError naming it.
 */
export function watcherOptions(RED: NodeAPI, node: Node, def: WatchFolderDef, t: Translate, s: Settings): FolderWatcherOptions {
  const ledgerFile = stateFilePath(RED.settings.userDir, 'watch-folder', node.id);
  return {
    folder: expandEnv(RED, node, t('label.folder'), def.folder),
    include: def.include || '*',
    exclude: def.exclude || '',
    recursive: !!def.recursive,
    mode: def.mode || 'auto',
    pollIntervalMs: s.seconds(t('label.pollInterval'), def.pollInterval, { default: 15, min: 0.05 }),
    stabilityMs: s.seconds(t('label.stability'), def.stability, { default: 5, min: 0 }),
    rescanIntervalMs: s.seconds(t('label.rescanInterval'), def.rescanInterval, { default: 60, min: 0 }),
    folderProbeMs: s.seconds(t('label.probeInterval'), def.probeInterval, { default: 3, min: 0.02 }),
    postAction: def.postAction || 'none',
    archiveFolder: def.postAction === 'move' ? expandEnv(RED, node, t('label.archiveFolder'), def.archiveFolder) : undefined,
    emitEmptyFiles: !!def.emitEmpty,
    ignoreTempFiles: def.ignoreTemp !== false,
    ledgerFile,
    retry: {
      baseMs: s.seconds(t('label.retryBase'), def.retryBase, { default: 30, min: 0, above: true }),
      maxMs: s.seconds(t('label.retryMax'), def.retryMax, { default: 1800, min: 0, above: true }),
      giveUpAfterMs: s.hours(t('label.giveUpAfter'), def.giveUpAfter, { default: 24, min: 0 }),
    },
    failedFolder: def.failedFolder ? expandEnv(RED, node, t('label.failedFolder'), def.failedFolder) : undefined,
    historyDir: path.join(path.dirname(ledgerFile), 'history', path.basename(ledgerFile, '.jsonl')),
    retentionMs: s.days(t('label.retention'), def.retention, { default: 30, min: 0 }),
  };
}

/** The file an incoming message acknowledges: `msg.labwireFile`, else `msg.filename` / `msg.file.path` with `msg.ack`. */
export function fileRefFrom(msg: Msg): FileRef | null {
  const lf = msg.labwireFile as Record<string, unknown> | undefined;
  if (lf && typeof lf === 'object' && (typeof lf.path === 'string' || typeof lf.relativePath === 'string')) {
    return {
      path: typeof lf.path === 'string' ? lf.path : undefined,
      relativePath: typeof lf.relativePath === 'string' ? lf.relativePath : undefined,
      id: typeof lf.id === 'string' ? lf.id : undefined,
      attempt: typeof lf.attempt === 'number' ? lf.attempt : undefined,
    };
  }
  if (msg.ack === true || msg.ack === false || msg.topic === 'ack') {
    const file = msg.file as Record<string, unknown> | undefined;
    const p = typeof msg.filename === 'string' ? msg.filename : file && typeof file.path === 'string' ? file.path : undefined;
    if (p) return { path: p };
  }
  return null;
}

/** The file a `retry` / `skip` message names: id, path or relative path in msg.payload, or its msg.labwireFile. */
export function journeyRefFrom(msg: Msg): FileRef | string | null {
  return typeof msg.payload === 'string' && msg.payload.trim() ? msg.payload.trim() : fileRefFrom(msg);
}
