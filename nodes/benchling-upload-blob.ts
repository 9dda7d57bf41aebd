/**
 * `benchling-upload-blob`: a file (path) or a Buffer (with a name) becomes a Benchling blob.
 *
 * Blob ids cannot be looked up later ("if you lose track of your blob ID it cannot be looked up"),
 * so a file's blob id is journalled before its bytes leave (multipart upload, even for one part):
 * a failure or a crash (kill -9) mid-upload leaves a recorded id, and the same file (same path,
 * size and mtime) arriving again — the watcher re-sends it — finishes that upload, or reuses the
 * blob if it is complete, instead of uploading a duplicate. At start, recorded uploads whose file
 * is gone or changed are aborted. Logic: clients/benchling/durable-upload.ts.
 */
import * as path from 'path';
import type { Node, NodeAPI, NodeDef } from 'node-red';
import { DEFAULT_PARTS_IN_PARALLEL, MAX_PARTS_IN_PARALLEL, type UploadOptions, type UploadResult } from './clients/benchling/blob-upload';
import { abortStaleUploads, currentKey, uploadFileDurably, uploadJournalOptions, type UploadRecord } from './clients/benchling/durable-upload';
import { JourneyLinks, noteJourney } from './lib/journey';
import type { Blob, BlobType } from './clients/benchling/types';
import { badInput, describeError } from './lib/http/errors';
import { Journal, stateFilePath } from './lib/journal';
import { Settings } from './lib/settings';
import { configNode, evaluateProperty, handleInput, Msg, translator, waitStatus } from './lib/node-red';
import type { BenchlingTenantNode } from './lib/config-nodes';

interface UploadBlobDef extends NodeDef {
  tenant: string;
  file: string;
  fileType: string;
  blobName?: string;
  mimeType?: string;
  blobType?: BlobType;
  /** Parts sent at once (1–8; empty: DEFAULT_PARTS_IN_PARALLEL). */
  partsInParallel?: string | number;
}

export = function (RED: NodeAPI): void {
  function BenchlingUploadBlob(this: Node, def: UploadBlobDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'benchling-upload-blob');
    const journal = Journal.open<UploadRecord>(stateFilePath(RED.settings.userDir as string, 'benchling-upload-blob', node.id), uploadJournalOptions());

    // A file's record goes when its journey is done (the journey's history keeps the blob id).
    const links = new JourneyLinks((key) => journal.delete(key));
    const tenantClient = () => configNode<BenchlingTenantNode>(RED, node, def.tenant, 'benchling-tenant').client();
    void abortStaleUploads(
      () => tenantClient().http,
      journal,
      (blob, err) => node.warn(t.shared('errors.blob.abortFailed', { blob, reason: describeError(t.error(err)) })),
    );

    const settings = new Settings(RED, node).uses(def.tenant, 'benchling-tenant');
    const partsInParallel = settings.integer(t('label.partsInParallel'), def.partsInParallel, { default: DEFAULT_PARTS_IN_PARALLEL, min: 1, max: MAX_PARTS_IN_PARALLEL });
    handleInput(
      RED,
      node,
      async ({ msg, send, signal, status }) => {
        const client = tenantClient();
        const source = await evaluateProperty(RED, node, def.file || 'payload', def.fileType || 'msg', msg);
        const opts: UploadOptions & { type: BlobType } = {
          mimeType: def.mimeType || undefined,
          type: def.blobType === 'VISUALIZATION' ? 'VISUALIZATION' : 'RAW_FILE',
          signal,
          partsInParallel,
          onProgress: (sent, total) => status('blue', t('status.uploading', { percent: Math.floor((100 * sent) / total) })),
          onWait: waitStatus(t, status),
        };
        let result: UploadResult;
        let reused = false;
        if (Buffer.isBuffer(source)) {
          const name = def.blobName || (typeof msg.filename === 'string' ? path.basename(msg.filename) : '');
          if (!name) throw badInput('blob.bufferNeedsName');
          result = await client.uploadBuffer(source, { ...opts, name });
        } else if (typeof source === 'string' && source.trim() !== '') {
          const r = await uploadFileDurably((file, o) => client.uploadFile(file, o), journal, source.trim(), { ...opts, name: def.blobName || undefined });
          result = r;
          reused = r.reused;
          links.link(msg, currentKey(source.trim())?.key);
        } else {
          const type = typeof source;
          if ((def.fileType || 'msg') === 'msg') {
            const property = `msg.${def.file || 'payload'}`;
            throw source === '' ? badInput('blob.msgEmptyString', { property }) : badInput('blob.msgNotFileOrBuffer', { property, type });
          }
          throw source === '' ? badInput('blob.settingEmptyString') : badInput('blob.settingNotFileOrBuffer', { type });
        }
        msg.payload = result.blob;
        msg.blobId = result.blob.id;
        msg.blob = { ...result.blob, size: result.size, parts: result.parts, reused, resumed: !!result.resumed };
        noteJourney(msg, { blobId: result.blob.id, uploadedAt: Date.now() });
        send(msg);
      },
      {
        settings,
        doneStatus: (msg: Msg) => t('status.uploaded', { name: (msg.payload as Blob)?.name ?? '' }),
        onClose: () => {
          links.close();
          journal.close();
        },
      },
    );
  }
  RED.nodes.registerType('benchling-upload-blob', BenchlingUploadBlob as never);
};
