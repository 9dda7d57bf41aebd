/**
 * `lab-watch-folder`: a thin Node-RED adapter around `FolderWatcher`. It sends one message per
 * complete file, shows the watcher's state as the node status, and takes acknowledgements
 * (`msg.labwireFile` wired back from the end of the pipeline) and `rescan` requests on its input.
 */
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import { FolderWatcher, FileRef, WatchedFile, WatcherStatus, WatchMode, PostAction } from './clients/folder-watcher';
import { stateFilePath } from './lib/journal';
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
}

export = function (RED: NodeAPI): void {
  const t = translator(RED, 'lab-watch-folder');

  function statusText(s: WatcherStatus): string {
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
        const ref = fileRefFrom(msg);
        if (!ref) throw badInput('folder.unknownInput');
        const failure = msg.ack === false || (msg.error !== undefined && msg.error !== null);
        const result = await watcher.ack(ref, { ok: !failure, error: failure ? failureText(msg.error) : undefined });
        msg.ackResult = result;
        restoreStatus();
        if (result.outcome === 'unknown') node.warn(t('warnings.unknownFile', { file: result.path }));
        else if (result.outcome === 'stale') node.warn(t('warnings.staleAck', { file: result.path }));
      },
      {
        doneStatus: () => (watcher ? statusText(watcher.getStatus()) : null),
        onClose: async () => {
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
    };
  }
  if (msg.ack === true || msg.ack === false || msg.topic === 'ack') {
    const file = msg.file as Record<string, unknown> | undefined;
    const p = typeof msg.filename === 'string' ? msg.filename : file && typeof file.path === 'string' ? file.path : undefined;
    if (p) return { path: p };
  }
  return null;
}

/** What the ledger records for a file the flow reported as failed (data, kept in English). */
function failureText(e: unknown): string {
  if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') return (e as { message: string }).message;
  if (e === undefined || e === null) return 'reported as failed';
  return describeError(e);
}
