/**
 * `lab-watch-folder`: a thin Node-RED adapter around `FolderWatcher`. It sends one message per
 * complete file, shows the watcher's state as the node status, and takes acknowledgements
 * (`msg.labwireFile` wired back from the end of the pipeline) and `rescan` requests on its input.
 */
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import { FolderWatcher, FileRef, WatchedFile, WatcherStatus, WatchMode, PostAction } from './clients/folder-watcher';
import * as path from 'path';
import { stateFilePath } from './lib/journal';
import { failureFromMessage, registerJourneyOwner } from './lib/journey';
import { expandEnv, handleInput, Msg, secondsSetting, setStatus, translator } from './lib/node-red';
import { badInput, describeError, LabError } from './lib/http/errors';

interface WatchFolderDef extends NodeDef {
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

export = function (RED: NodeAPI): void {
  const t = translator(RED, 'lab-watch-folder');

  function statusText(s: WatcherStatus): string {
    if (s.deadLettered > 0 || s.retrying > 0) return t('status.problems', { failed: s.deadLettered, retrying: s.retrying, unacked: s.awaitingAck });
    return t('status.watching', {
      files: s.files,
      pending: s.pending,
      unacked: s.awaitingAck,
    });
  }

  function LabWatchFolder(this: Node, def: WatchFolderDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    let watcher: FolderWatcher | null = null;
    let settingsError: LabError | null = null;
    let unregister = (): void => undefined;

    try {
      const folder = expandEnv(RED, node, t('label.folder'), def.folder);
      watcher = new FolderWatcher({
        folder,
        include: def.include || '*',
        exclude: def.exclude || '',
        recursive: !!def.recursive,
        mode: def.mode || 'auto',
        pollIntervalMs: secondsSetting(t('label.pollInterval'), def.pollInterval, 15, 0.05),
        stabilityMs: secondsSetting(t('label.stability'), def.stability, 5, 0),
        rescanIntervalMs: secondsSetting(t('label.rescanInterval'), def.rescanInterval, 60, 0),
        folderProbeMs: secondsSetting(t('label.probeInterval'), def.probeInterval, 3, 0.02),
        postAction: def.postAction || 'none',
        archiveFolder: def.postAction === 'move' ? expandEnv(RED, node, t('label.archiveFolder'), def.archiveFolder) : undefined,
        emitEmptyFiles: !!def.emitEmpty,
        ignoreTempFiles: def.ignoreTemp !== false,
        ledgerFile: stateFilePath(RED.settings.userDir, 'watch-folder', node.id),
        retry: {
          baseMs: secondsSetting(t('label.retryBase'), def.retryBase, 30, 0.001),
          maxMs: secondsSetting(t('label.retryMax'), def.retryMax, 1800, 0.001),
          giveUpAfterMs: secondsSetting(t('label.giveUpAfter'), def.giveUpAfter, 24, 0) * 3600,
        },
        failedFolder: def.failedFolder ? expandEnv(RED, node, t('label.failedFolder'), def.failedFolder) : undefined,
        historyDir: path.join(path.dirname(stateFilePath(RED.settings.userDir, 'watch-folder', node.id)), 'history', `watch-folder-${node.id.replace(/[^A-Za-z0-9_.-]/g, '_')}`),
        retentionMs: secondsSetting(t('label.retention'), def.retention, 30, 0) * 24 * 3600,
      });
    } catch (err) {
      const reason = err instanceof LabError ? t.error(err).message : describeError(err);
      // Anything else (a bug, an unexpected throw) is still told as a settings problem, Catch-ably.
      settingsError = err instanceof LabError ? err : badInput('folder.badSettings', { error: reason });
      setStatus(node, 'red', t('status.badSettings'), 'ring');
      node.error(t.shared('errors.folder.badSettings', { error: reason }));
    }

    function showStatus(s: WatcherStatus): void {
      switch (s.phase) {
        case 'waiting':
          return setStatus(node, 'yellow', t('status.waiting'), 'ring');
        case 'error':
          return setStatus(node, 'red', s.lastProblem ? t.error(s.lastProblem).message : t('status.error'), 'ring');
        case 'watching':
          // Dead-lettered files wait for a person: red. Retrying ones heal on their own: yellow.
          if (s.deadLettered > 0) return setStatus(node, 'red', statusText(s), 'ring');
          if (s.retrying > 0) return setStatus(node, 'yellow', statusText(s), 'ring');
          return setStatus(node, s.pending > 0 ? 'blue' : 'green', statusText(s), 'dot');
        case 'starting':
          return setStatus(node, 'grey', t('status.starting'), 'ring');
        default:
          return undefined; // closed: the close handler clears the status
      }
    }

    /** After an input was handled, show the watcher's own state again (not a generic "done"). */
    function restoreStatus(): void {
      setImmediate(() => {
        if (watcher && watcher.getStatus().phase !== 'closed') showStatus(watcher.getStatus());
      });
    }

    if (watcher) {
      const w = watcher;
      w.on('file', (f: WatchedFile) => {
        node.send({
          payload: f.path,
          filename: f.path,
          topic: w.folder,
          file: {
            name: f.name,
            path: f.path,
            relativePath: f.relativePath,
            size: f.size,
            mtime: new Date(Math.round(f.mtimeMs)).toISOString(),
          },
          labwireFile: {
            watcher: node.id,
            attempt: f.attempt,
            id: f.id,
            path: f.path,
            relativePath: f.relativePath,
            size: f.size,
            mtimeMs: f.mtimeMs,
            deliveryCount: f.deliveryCount,
          },
        } as NodeMessage);
      });
      w.on('status', (s: WatcherStatus) => showStatus(s));
      unregister = registerJourneyOwner(node.id, w);
      w.on('error', (err: Error) => node.warn(t.error(err).message));
      setStatus(node, 'grey', t('status.starting'), 'ring');
      w.start().catch((err) => {
        const text = t.error(err).message;
        setStatus(node, 'red', text, 'ring');
        node.error(text);
      });
    }

    handleInput(
      RED,
      node,
      async ({ msg }) => {
        if (!watcher) throw settingsError ?? badInput('folder.notConfigured');
        if (msg.topic === 'rescan') {
          await watcher.rescan();
          restoreStatus();
          return;
        }
        if (msg.topic === 'retry' || msg.topic === 'skip') {
          // By id, path or relative path in msg.payload, or the file's own msg.labwireFile.
          const which = typeof msg.payload === 'string' && msg.payload.trim() ? msg.payload.trim() : fileRefFrom(msg);
          if (!which) throw badInput('folder.noSuchJourney', { file: String(msg.payload ?? '') });
          const by = typeof msg.user === 'string' && msg.user ? msg.user : `flow (${node.name || node.id})`;
          const result = msg.topic === 'retry' ? await watcher.retry(which) : await watcher.skip(which, by);
          if (result.outcome === 'unknown') throw badInput('folder.noSuchJourney', { file: typeof which === 'string' ? which : result.path });
          msg.ackResult = result;
          restoreStatus();
          return;
        }
        const ref = fileRefFrom(msg);
        if (!ref) throw badInput('folder.unknownInput');
        const failed = msg.ack === false || (msg.error !== undefined && msg.error !== null);
        const result = await watcher.ack(ref, failed ? { ok: false, failure: failureFromMessage(msg) } : { ok: true });
        msg.ackResult = result;
        restoreStatus();
        if (result.outcome === 'unknown') node.warn(t('warnings.unknownFile', { file: result.path }));
        else if (result.outcome === 'stale') node.warn(t('warnings.staleAck', { file: result.path }));
      },
      {
        doneStatus: () => (watcher ? statusText(watcher.getStatus()) : null),
        onClose: async () => {
          unregister();
          if (watcher) await watcher.close();
        },
      },
    );
  }

  RED.nodes.registerType('lab-watch-folder', LabWatchFolder);
};

/** The file an incoming message acknowledges: `msg.labwireFile`, else `msg.filename` / `msg.file.path` with `msg.ack`. */
function fileRefFrom(msg: Msg): FileRef | null {
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
