/**
 * `lab-watch-folder`: a thin Node-RED adapter around `FolderWatcher`. It sends one message per
 * complete file, shows the watcher's state as the node status, and takes acknowledgements
 * (`msg.labwireFile` wired back from the end of the pipeline) and `rescan` requests on its input.
 */
import type { Node, NodeAPI, NodeMessage } from 'node-red';
import { FolderWatcher, WatchedFile, WatcherStatus } from './clients/folder-watcher';
import { failureFromMessage, registerJourneyOwner } from './lib/journey';
import { fileRefFrom, journeyRefFrom, watcherOptions, type WatchFolderDef } from './lib/watch-folder-input';
import { handleInput, setStatus, translator } from './lib/node-red';
import { outcomeLine } from './lib/outcome-log';
import { Settings } from './lib/settings';
import { badInput, describeError, LabError } from './lib/http/errors';

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

    const settings = new Settings(RED, node);
    try {
      const options = watcherOptions(RED, node, def, t, settings);
      // Unusable numbers: no watcher; handleInput shows them and fails every message with them.
      if (!settings.problem()) watcher = new FolderWatcher(options);
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
            ...(f.reprocess ? { reprocess: f.reprocess } : {}),
          },
        } as NodeMessage);
      });
      w.on('status', (s: WatcherStatus) => showStatus(s));
      unregister = registerJourneyOwner(node.id, w, { name: node.name || '' });
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
          const which = journeyRefFrom(msg);
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
        const failure = msg.ack === false || (msg.error !== undefined && msg.error !== null) ? failureFromMessage(msg) : undefined;
        const result = await watcher.ack(ref, failure ? { ok: false, failure } : { ok: true });
        msg.ackResult = result;
        restoreStatus();
        const line = outcomeLine(t, result, watcher.ledgerEntry(result.relativePath), failure);
        if (line) node[line.level](line.text);
        if (result.outcome === 'unknown') node.warn(t('warnings.unknownFile', { file: result.path }));
        else if (result.outcome === 'stale') node.warn(t('warnings.staleAck', { file: result.path }));
      },
      {
        settings,
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
