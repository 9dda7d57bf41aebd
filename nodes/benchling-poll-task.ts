/**
 * `benchling-poll-task`: follows `GET /tasks/{id}` with the shared poller until the task is
 * SUCCEEDED (output 1, the task's response on msg.payload) or FAILED (output 2, message and
 * errors, plus msg.error with code TASK_FAILED). Only a timeout or an unusable answer is an error
 * for the Catch node: a FAILED task is a normal outcome a flow routes.
 *
 * A msg without a task id but with `msg.processorId` and `msg.followProcessor` (set by the
 * output processor node when processing was started by an attempt whose answer was lost) is
 * followed through `GET /automation-output-processors/{id}` instead, with the same outputs.
 */
import type { Node, NodeAPI, NodeDef } from 'node-red';
import { configNode, evaluateProperty, handleInput, Msg, requireString, translator, waitStatus, type Translate } from './lib/node-red';
import { describeError } from './lib/http/errors';
import type { BenchlingTenantNode } from './lib/config-nodes';
import { noteJourney } from './lib/journey';
import { Settings } from './lib/settings';

interface PollTaskDef extends NodeDef {
  tenant: string;
  taskId: string;
  taskIdType: string;
  interval?: string | number;
  maxInterval?: string | number;
  timeout?: string | number;
}

/**
 * Puts a processor's error file (the rows that failed) on msg.errorFile with a download URL, so a
 * flow can fetch or show it. Best effort: the task's outcome is delivered even if this fails.
 */
async function surfaceErrorFile(t: Translate, tenant: BenchlingTenantNode, msg: Msg, signal: AbortSignal): Promise<void> {
  try {
    const client = tenant.client();
    const processor = await client.getOutputProcessor(msg.processorId as string, signal);
    msg.processor = processor;
    if (processor.errorFile?.id) {
      const url = await client.getDownloadUrl(processor.errorFile.id, signal);
      msg.errorFile = { ...processor.errorFile, downloadURL: url.downloadURL, expiresAt: url.expiresAt };
    }
  } catch (err) {
    msg.errorFileError = describeError(t.error(err));
  }
}

export = function (RED: NodeAPI): void {
  function BenchlingPollTask(this: Node, def: PollTaskDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'benchling-poll-task');
    const settings = new Settings(RED, node).uses(def.tenant, 'benchling-tenant');
    const intervalMs = settings.seconds(t('label.interval'), def.interval, { default: 5, min: 0.01 });
    const maxIntervalMs = Math.max(intervalMs, settings.seconds(t('label.upTo'), def.maxInterval, { default: 30, min: 0.01 }));
    const timeoutMs = settings.seconds(t('label.timeout'), def.timeout, { default: 1800, min: 0.01 });

    handleInput(
      RED,
      node,
      async ({ msg, send, signal, status }) => {
        const tenant = configNode<BenchlingTenantNode>(RED, node, def.tenant, 'benchling-tenant');
        const taskIdType = def.taskIdType || 'msg';
        const given = await evaluateProperty(RED, node, def.taskId || 'taskId', taskIdType, msg);
        const followProcessor = (given === undefined || given === null || given === '') && msg.followProcessor === true && typeof msg.processorId === 'string';
        const poll = {
          intervalMs,
          maxIntervalMs,
          factor: 1.5,
          timeoutMs,
          signal,
          onPoll: ({ attempt, error }: { attempt: number; error?: unknown }) =>
            error
              ? status('yellow', t('status.pollRetrying', { attempt }), 'ring')
              : status('blue', t('status.pollingAttempt', { attempt })),
        };
        let failure: { message: string; errors?: unknown } | undefined;
        status('blue', t('status.polling'));
        if (followProcessor) {
          const processor = await tenant.client().waitForProcessor(msg.processorId as string, poll);
          msg.processor = processor;
          msg.task = { status: processor.status };
          if (processor.status === 'SUCCEEDED') msg.payload = processor;
          else failure = { message: t('message.processorFailed', { id: processor.id }) };
          if (processor.status === 'FAILED' || (processor.progressStats?.rowsFailed ?? 0) > 0) await surfaceErrorFile(t, tenant, msg, signal);
        } else {
          const taskId = await requireString(RED, node, t('label.taskId'), def.taskId || 'taskId', taskIdType, msg);
          const task = await tenant.client().waitForTask(taskId, { ...poll, onWait: waitStatus(t, status) });
          msg.taskId = taskId;
          msg.task = task;
          const stats = (task.response as { progressStats?: { rowsFailed?: number } } | undefined)?.progressStats;
          if (typeof msg.processorId === 'string' && (task.status === 'FAILED' || (stats?.rowsFailed ?? 0) > 0)) {
            await surfaceErrorFile(t, tenant, msg, signal);
          }
          if (task.status === 'SUCCEEDED') msg.payload = task.response ?? {};
          else failure = { message: task.message ?? t('message.taskFailed'), errors: task.errors };
        }
        noteJourney(msg, { taskStatus: failure ? 'FAILED' : 'SUCCEEDED', taskFinishedAt: Date.now() });
        if (!failure) return send([msg, null]);
        msg.payload = { status: 'FAILED', message: failure.message, errors: failure.errors };
        // The full reason, for a flow that acknowledges the watcher with ack:false (TASK_FAILED is permanent).
        const errorFile = (msg.errorFile as { downloadURL?: string } | undefined)?.downloadURL;
        msg.error = { code: 'TASK_FAILED', message: failure.message, errorFile, source: { id: node.id, type: node.type, name: node.name } };
        send([null, msg]);
      },
      {
        settings,
        doneStatus: (msg: Msg) => {
          const task = msg.task as { status?: string } | undefined;
          return task?.status === 'FAILED' ? { text: t('status.failed'), fill: 'red' } : t('status.succeeded');
        },
      },
    );
  }
  RED.nodes.registerType('benchling-poll-task', BenchlingPollTask as never);
};
