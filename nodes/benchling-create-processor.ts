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
 *
 * Neither write is ever repeated blindly after a lost answer (reset, timeout, 5xx): the re-send
 * looks up what the first attempt did. When processing was already started but its task id was
 * lost, msg carries `followProcessor: true` and no taskId: the poll node follows the processor.
 * Logic: clients/benchling/output-processing.ts.
 */
import type { Node, NodeAPI, NodeDef } from 'node-red';
import { createAndProcess, processorJournalOptions, type ProcessorRecord } from './clients/benchling/output-processing';
import { Journal, stateFilePath } from './lib/journal';
import { JourneyLinks, noteJourney } from './lib/journey';
import { Settings } from './lib/settings';
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

export = function (RED: NodeAPI): void {
  function BenchlingCreateProcessor(this: Node, def: CreateProcessorDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'benchling-create-processor');
    const journal = Journal.open<ProcessorRecord>(stateFilePath(RED.settings.userDir as string, 'benchling-create-processor', node.id), processorJournalOptions());

    // A file's record goes when its journey is done (the journey's history keeps the ids).
    const links = new JourneyLinks((key) => journal.delete(key));

    const settings = new Settings(RED, node).uses(def.tenant, 'benchling-tenant');
    handleInput(
      RED,
      node,
      async ({ msg, send, signal, status }) => {
        const tenant = configNode<BenchlingTenantNode>(RED, node, def.tenant, 'benchling-tenant');
        const assayRunId = await requireString(RED, node, t('label.assayRunId'), def.assayRunId, def.assayRunIdType, msg);
        const configName = await requireString(RED, node, t('label.configName'), def.configName, def.configNameType, msg);
        const fileId = await requireString(RED, node, t('label.fileId'), def.fileId || 'blobId', def.fileIdType || 'msg', msg);
        const failedId = typeof msg.processorId === 'string' ? msg.processorId : undefined;
        const reprocess = (msg.labwireFile as { reprocess?: unknown } | undefined)?.reprocess;
        const r = await createAndProcess(
          tenant.client(),
          journal,
          { assayRunId, configName, fileId, completeWithErrors: !!def.completeWithErrors, failedId, recovery: def.recovery, reprocess: typeof reprocess === 'string' ? reprocess : undefined },
          { signal, onWait: waitStatus(t, status), onStep: (step) => status('blue', t(`status.${step}`)) },
        );
        if (r.recoveredFrom) msg.recoveredFrom = r.recoveredFrom;
        msg.payload = r.processor;
        msg.processorId = r.processor.id;
        msg.fileId = fileId;
        msg.assayRunId = assayRunId;
        if (r.taskId) {
          msg.taskId = r.taskId;
          delete msg.followProcessor;
        } else {
          // Processing was started by an earlier attempt whose answer was lost: follow the processor.
          delete msg.taskId;
          msg.followProcessor = true;
        }
        if (r.reused) msg.processorReused = true;
        links.link(msg, `${assayRunId}|${configName}|${fileId}`);
        noteJourney(msg, { processorId: r.processor.id, processorCreatedAt: Date.now(), taskId: r.taskId, assayRunId });
        send(msg);
      },
      {
        settings,
        doneStatus: (msg) => t('status.processing', { id: String(msg.processorId) }),
        onClose: () => {
          links.close();
          journal.close();
        },
      },
    );
  }
  RED.nodes.registerType('benchling-create-processor', BenchlingCreateProcessor as never);
};
