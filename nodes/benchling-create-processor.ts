/**
 * `benchling-create-processor`: creates an automation output processor for a run from an uploaded
 * file, then starts processing it (`:process-output`). Both ids are recorded durably per
 * (run, file config, file): if the same file comes again (a retry, or a re-emit after a crash) the
 * recorded processor is reused — processed if it was created but never processed — so a run
 * never gets two processors for one file.
 */
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { AutomationOutputProcessor } from './clients/benchling/types';
import { Journal, stateFilePath } from './lib/journal';
import { configNode, handleInput, requireString } from './lib/node-red';
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
    const journal = Journal.open<ProcessorRecord>(stateFilePath(RED.settings.userDir as string, 'benchling-create-processor', node.id));

    handleInput(
      node,
      async ({ msg, send, signal, status }) => {
        const tenant = configNode<BenchlingTenantNode>(RED, node, def.tenant, 'benchling-tenant');
        const assayRunId = await requireString(RED, node, 'assay run id', def.assayRunId, def.assayRunIdType, msg);
        const configName = await requireString(RED, node, 'automation file config name', def.configName, def.configNameType, msg);
        const fileId = await requireString(RED, node, 'file id', def.fileId || 'blobId', def.fileIdType || 'msg', msg);
        const client = tenant.client();
        const onWait = (reason: string) => status('yellow', reason, 'ring');
        const key = `${assayRunId}|${configName}|${fileId}`;

        let rec = journal.get(key);
        let processor = rec?.processor;
        const reused = !!processor;
        if (rec && !processor) {
          // A create was sent but its answer never recorded (crash): look before creating again.
          status('blue', 'checking for processor');
          processor = await client.findOutputProcessor(assayRunId, configName, fileId, signal);
        }
        if (!processor) {
          status('blue', 'creating processor');
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
          status('blue', 'starting processing');
          taskId = await client.processOutput(processor.id, signal, onWait);
          journal.set(key, { processor, taskId, at: new Date().toISOString() });
        }
        msg.payload = processor;
        msg.processorId = processor.id;
        msg.taskId = taskId;
        msg.assayRunId = assayRunId;
        if (reused) msg.processorReused = true;
        send(msg);
      },
      {
        doneStatus: (msg) => `processing ${String(msg.processorId)}`,
        onClose: () => journal.close(),
      },
    );
  }
  RED.nodes.registerType('benchling-create-processor', BenchlingCreateProcessor as never);
};
