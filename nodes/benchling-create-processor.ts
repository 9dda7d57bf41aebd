/**
 * `benchling-create-processor`: creates an automation output processor for a run from an uploaded
 * file, then starts processing it (`:process-output`). Both ids are recorded durably per
 * (run, file config, file): if the same file comes again (a retry, or a re-emit after a crash) the
 * recorded processor is reused — processed if it was created but never processed — so a run
 * never gets two processors for one file.
 *
 * Recovery after a FAILED processing (Benchling's documented path): a msg carrying the failed
 * processor's id (`msg.processorId`, e.g. wired back from the poll node's "failed" output) and a
 * corrected file either archives the failed processor and creates a new one, or points the failed
 * one at the new file (PATCH) and processes it again — whichever the node is set to.
 */
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { AutomationOutputProcessor } from './clients/benchling/types';
import { Journal, stateFilePath } from './lib/journal';
import { badInput } from './lib/http/errors';
import { configNode, handleInput, requireString, translator, waitStatus } from './lib/node-red';
import type { BenchlingTenantNode } from './lib/config-nodes';

interface CreateProcessorDef extends NodeDef {
  tenant: string;
  assayRunId: string;
  assayRunIdType: string;
  configName: string;
  configNameType: string;
  fileId: string;
  fileIdType: string;
  completeWithErrors?: boolean;
  /** What to do when msg.processorId names a FAILED processor: nothing, archive + new, or PATCH. */
  recovery?: 'none' | 'archive' | 'patch';
}

interface ProcessorRecord {
  /** Absent while the create request is in flight: a crash then leaves only this marker. */
  processor?: AutomationOutputProcessor;
  taskId?: string;
  at: string;
}

export = function (RED: NodeAPI): void {
  function BenchlingCreateProcessor(this: Node, def: CreateProcessorDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'benchling-create-processor');
    const journal = Journal.open<ProcessorRecord>(stateFilePath(RED.settings.userDir as string, 'benchling-create-processor', node.id));

    handleInput(
      RED,
      node,
      async ({ msg, send, signal, status }) => {
        const tenant = configNode<BenchlingTenantNode>(RED, node, def.tenant, 'benchling-tenant');
        const assayRunId = await requireString(RED, node, t('label.assayRunId'), def.assayRunId, def.assayRunIdType, msg);
        const configName = await requireString(RED, node, t('label.configName'), def.configName, def.configNameType, msg);
        const fileId = await requireString(RED, node, t('label.fileId'), def.fileId || 'blobId', def.fileIdType || 'msg', msg);
        const client = tenant.client();
        const onWait = waitStatus(t, status);
        const key = `${assayRunId}|${configName}|${fileId}`;

        let rec = journal.get(key);
        let processor = rec?.processor;
        const reused = !!processor;
        const failedId = typeof msg.processorId === 'string' ? msg.processorId : undefined;
        if (failedId && def.recovery && def.recovery !== 'none') {
          const failed = await client.getOutputProcessor(failedId, signal);
          if (failed.status === 'FAILED' && failed.file?.id === fileId) {
            throw badInput('benchling.processingFailed', { file: fileId, processor: failedId });
          }
          if (failed.status === 'FAILED' && !rec) {
            msg.recoveredFrom = failedId;
            if (def.recovery === 'archive') {
              status('blue', t('status.archiving'));
              await client.archiveOutputProcessors([failedId], 'Made in error', signal);
            } else {
              status('blue', t('status.replacingFile'));
              journal.set(key, { at: new Date().toISOString() }); // a crash from here on is recovered by lookup
              processor = await client.updateOutputProcessorFile(failedId, fileId, signal);
            }
          }
        }
        if (rec && !processor) {
          // A create was sent but its answer never recorded (crash): look before creating again.
          status('blue', t('status.checking'));
          processor = await client.findOutputProcessor(assayRunId, configName, fileId, signal);
        }
        if (!processor) {
          status('blue', t('status.creating'));
          journal.set(key, { at: new Date().toISOString() });
          processor = await client.createOutputProcessor(
            { assayRunId, automationFileConfigName: configName, fileId, completeWithErrors: !!def.completeWithErrors },
            signal,
            onWait,
          );
        }
        if (!rec?.processor) {
          rec = { processor, at: new Date().toISOString() };
          journal.set(key, rec);
        }
        let taskId = rec!.taskId;
        if (!taskId) {
          status('blue', t('status.starting'));
          taskId = await client.processOutput(processor.id, signal, onWait);
          journal.set(key, { processor, taskId, at: new Date().toISOString() });
        }
        msg.payload = processor;
        msg.processorId = processor.id;
        msg.fileId = fileId;
        msg.taskId = taskId;
        msg.assayRunId = assayRunId;
        if (reused) msg.processorReused = true;
        send(msg);
      },
      {
        doneStatus: (msg) => t('status.processing', { id: String(msg.processorId) }),
        onClose: () => journal.close(),
      },
    );
  }
  RED.nodes.registerType('benchling-create-processor', BenchlingCreateProcessor as never);
};
