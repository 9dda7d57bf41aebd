/**
 * `benchling-find-runs`: the assay runs of a schema (optionally of one entry), every page of
 * them, as one message per run or one message with the array.
 */
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import type { AssayRun } from './clients/benchling/types';
import type { BenchlingTenantNode } from './lib/config-nodes';
import { Settings } from './lib/settings';
import { configNode, evaluateProperty, handleInput, requireString, translator, waitStatus } from './lib/node-red';

interface FindRunsDef extends NodeDef {
  tenant: string;
  schemaId: string;
  schemaIdType: string;
  entryId?: string;
  entryIdType?: string;
  output?: 'each' | 'array';
}

export = function (RED: NodeAPI): void {
  function BenchlingFindRuns(this: Node, def: FindRunsDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'benchling-find-runs');
    const settings = new Settings(RED, node).uses(def.tenant, 'benchling-tenant');
    handleInput(
      RED,
      node,
      async ({ msg, send, signal, status }) => {
        const client = configNode<BenchlingTenantNode>(RED, node, def.tenant, 'benchling-tenant').client();
        const onWait = waitStatus(t, status);
        const schemaId = await requireString(RED, node, t('label.schemaId'), def.schemaId, def.schemaIdType, msg);
        const entryValue = def.entryId ? await evaluateProperty(RED, node, def.entryId, def.entryIdType || 'str', msg) : undefined;
        const entryId = typeof entryValue === 'string' && entryValue.trim() ? entryValue.trim() : undefined;
        status('blue', t('status.listing'));
        let runs: AssayRun[] = await client.listAssayRuns(schemaId, { signal, onWait });
        // The API has no entry filter; Benchling's guide matches entryId on the client.
        if (entryId) runs = runs.filter((r) => r.entryId === entryId);
        msg.schemaId = schemaId;
        msg.count = runs.length;
        if (def.output === 'array') {
          msg.payload = runs;
          send(msg);
          return;
        }
        runs.forEach((run, index) => {
          const out = RED.util.cloneMessage(msg) as NodeMessage & Record<string, unknown>;
          out.payload = run;
          out.assayRunId = run.id;
          out.entryId = run.entryId;
          out.parts = { id: msg._msgid, index, count: runs.length, type: 'array' };
          send(out);
        });
      },
      { settings, doneStatus: (msg) => t('status.found', { count: String(msg.count) }) },
    );
  }
  RED.nodes.registerType('benchling-find-runs', BenchlingFindRuns as never);
};
