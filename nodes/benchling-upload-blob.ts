/**
 * `benchling-upload-blob`: a file (path) or a Buffer (with a name) becomes a Benchling blob.
 *
 * Blob ids cannot be looked up later ("if you lose track of your blob ID it cannot be looked up"),
 * so every upload is recorded in a durable journal before the msg goes on. The same file (same
 * path, size and mtime) arriving again — e.g. re-emitted by the watcher after a crash — reuses
 * the recorded blob instead of uploading a duplicate. A multipart upload cut off by a crash is
 * aborted on the next start.
 */
import * as path from 'path';
import * as fs from 'fs';
import type { Node, NodeAPI, NodeDef } from 'node-red';
import { abortMultipart, UploadOptions, UploadResult } from './clients/benchling/blob-upload';
import type { Blob, BlobType } from './clients/benchling/types';
import { badInput, describeError } from './lib/http/errors';
import { Journal, stateFilePath } from './lib/journal';
import { configNode, evaluateProperty, handleInput, Msg, translator, waitStatus } from './lib/node-red';
import type { BenchlingTenantNode } from './lib/config-nodes';

interface UploadBlobDef extends NodeDef {
  tenant: string;
  file: string;
  fileType: string;
  blobName?: string;
  mimeType?: string;
  blobType?: BlobType;
}

interface UploadRecord {
  state: 'uploading' | 'complete';
  blobId: string;
  blob?: Blob;
  size: number;
  at: string;
}

function fileKey(file: string): string | null {
  try {
    const st = fs.statSync(file);
    return `${path.resolve(file)}|${st.size}|${st.mtimeMs}`;
  } catch {
    return null; // the upload reports the missing file with a clear message
  }
}

export = function (RED: NodeAPI): void {
  function BenchlingUploadBlob(this: Node, def: UploadBlobDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'benchling-upload-blob');
    const journal = Journal.open<UploadRecord>(stateFilePath(RED.settings.userDir as string, 'benchling-upload-blob', node.id));

    const leftovers = [...journal.entries()].filter(([, r]) => r.state === 'uploading');
    if (leftovers.length) {
      // A multipart upload interrupted by a crash cannot be resumed (parts cannot be listed): abort it.
      void (async () => {
        for (const [key, rec] of leftovers) {
          try {
            const tenant = configNode<BenchlingTenantNode>(RED, node, def.tenant, 'benchling-tenant');
            await abortMultipart(tenant.client().http, rec.blobId);
            journal.delete(key);
          } catch (err) {
            node.warn(t.shared('errors.blob.abortFailed', { blob: rec.blobId, reason: describeError(t.error(err)) }));
          }
        }
      })();
    }

    handleInput(
      RED,
      node,
      async ({ msg, send, signal, status }) => {
        const client = configNode<BenchlingTenantNode>(RED, node, def.tenant, 'benchling-tenant').client();
        const source = await evaluateProperty(RED, node, def.file || 'payload', def.fileType || 'msg', msg);
        const opts: UploadOptions = {
          mimeType: def.mimeType || undefined,
          type: def.blobType === 'VISUALIZATION' ? 'VISUALIZATION' : 'RAW_FILE',
          signal,
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
          const file = source.trim();
          const key = fileKey(file);
          const known = key ? journal.get(key) : undefined;
          if (key && known?.state === 'complete' && known.blob) {
            result = { blob: known.blob, size: known.size, parts: 0 };
            reused = true;
          } else {
            result = await client.uploadFile(file, {
              ...opts,
              name: def.blobName || undefined,
              onMultipartStarted: (blobId) => key && journal.set(key, { state: 'uploading', blobId, size: 0, at: new Date().toISOString() }),
            });
            if (key) journal.set(key, { state: 'complete', blobId: result.blob.id, blob: result.blob, size: result.size, at: new Date().toISOString() });
          }
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
        msg.blob = { ...result.blob, size: result.size, parts: result.parts, reused };
        send(msg);
      },
      {
        doneStatus: (msg: Msg) => t('status.uploaded', { name: (msg.payload as Blob)?.name ?? '' }),
        onClose: () => journal.close(),
      },
    );
  }
  RED.nodes.registerType('benchling-upload-blob', BenchlingUploadBlob as never);
};
