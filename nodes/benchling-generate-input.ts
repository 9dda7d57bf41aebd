/**
 * `benchling-generate-input`: for a run, pick its automation input generator by file config
 * name, generate the input file, follow the task with the shared poller, and download the file —
 * into a folder (temp file, then rename) or into msg.payload.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { AutomationInputGenerator } from './clients/benchling/types';
import type { BenchlingTenantNode } from './lib/config-nodes';
import { badInput, LabError } from './lib/http/errors';
import { safeFileName } from './lib/files';
import { configNode, evaluateProperty, handleInput, requireString, translator, waitStatus } from './lib/node-red';
import { Settings } from './lib/settings';

interface GenerateInputDef extends NodeDef {
  tenant: string;
  assayRunId: string;
  assayRunIdType: string;
  configName?: string;
  configNameType?: string;
  output?: 'file' | 'payload';
  folder?: string;
  interval?: string | number;
  timeout?: string | number;
}

export = function (RED: NodeAPI): void {
  function BenchlingGenerateInput(this: Node, def: GenerateInputDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'benchling-generate-input');
    const settings = new Settings(RED, node).uses(def.tenant, 'benchling-tenant');
    const intervalMs = settings.seconds(t('label.interval'), def.interval, { default: 2, min: 0.01 });
    const timeoutMs = settings.seconds(t('label.timeout'), def.timeout, { default: 600, min: 0.01 });

    handleInput(
      RED,
      node,
      async ({ msg, send, signal, status }) => {
        const client = configNode<BenchlingTenantNode>(RED, node, def.tenant, 'benchling-tenant').client();
        const runId = await requireString(RED, node, t('label.assayRunId'), def.assayRunId || 'assayRunId', def.assayRunIdType || 'msg', msg);
        const configValue = def.configName ? await evaluateProperty(RED, node, def.configName, def.configNameType || 'str', msg) : '';
        const configName = typeof configValue === 'string' ? configValue.trim() : '';
        let folder = '';
        if (def.output !== 'payload') {
          folder = String((await evaluateProperty(RED, node, def.folder ?? '', 'str', msg)) ?? '').trim();
          if (!folder) throw badInput('benchling.outputFolderMissing');
        }

        status('blue', t('status.finding'));
        const generators = await client.listInputGenerators(runId, signal);
        const names = generators.map((g) => g.automationFileConfig?.name ?? g.id);
        let generator: AutomationInputGenerator | undefined;
        if (configName) generator = generators.find((g) => g.automationFileConfig?.name === configName);
        else if (generators.length === 1) generator = generators[0];
        if (!generator) {
          if (!configName) throw badInput('benchling.chooseInputConfig', { run: runId, count: generators.length, configs: names.join(', ') });
          if (names.length === 0) throw badInput('benchling.noInputConfigNone', { run: runId, config: configName });
          throw badInput('benchling.noInputConfig', { run: runId, config: configName, configs: names.join(', ') });
        }

        status('blue', t('status.generating'));
        const taskId = await client.generateInput(generator.id, signal, waitStatus(t, status));
        const task = await client.waitForTask<AutomationInputGenerator>(taskId, {
          intervalMs,
          maxIntervalMs: Math.max(intervalMs, 10_000),
          timeoutMs,
          signal,
          onWait: waitStatus(t, status),
          onPoll: ({ attempt }) => status('blue', t('status.generatingAttempt', { attempt })),
        });
        if (task.status === 'FAILED') {
          throw task.message
            ? new LabError('TASK_FAILED', 'benchling.inputGenerationFailed', { run: runId, message: task.message })
            : new LabError('TASK_FAILED', 'benchling.inputGenerationFailedNoMessage', { run: runId });
        }
        const file = task.response?.file;
        if (!file?.id) throw new LabError('BAD_RESPONSE', 'benchling.noGeneratedFile', { run: runId, task: taskId });

        status('blue', t('status.downloading'));
        const name = safeFileName(file.name || `${generator.id}.csv`);
        if (def.output === 'payload') {
          const { buffer } = await client.downloadBlob(file.id, { signal });
          msg.payload = buffer;
          msg.filename = name;
        } else {
          // Benchling names a config's generated file the same for every run: a folder per run
          // keeps one run's file from replacing another's, and the name a protocol expects.
          const runFolder = path.join(folder, safeFileName(runId));
          fs.mkdirSync(runFolder, { recursive: true });
          const target = path.join(runFolder, name);
          await client.downloadBlob(file.id, { toFile: target, signal });
          msg.payload = target;
          msg.filename = target;
        }
        msg.mimeType = file.mimeType;
        msg.blobId = file.id;
        msg.assayRunId = runId;
        msg.inputGenerator = task.response;
        send(msg);
      },
      { settings, doneStatus: (msg) => t('status.generated', { name: path.basename(String(msg.filename ?? '')) }) },
    );
  }
  RED.nodes.registerType('benchling-generate-input', BenchlingGenerateInput as never);
};
