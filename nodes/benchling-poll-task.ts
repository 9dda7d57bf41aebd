/**
 * `benchling-poll-task`: follows `GET /tasks/{id}` with the shared poller until the task is
 * SUCCEEDED (output 1, the task's response on msg.payload) or FAILED (output 2, message and
 * errors). Only a timeout or an unusable answer is an error for the Catch node: a FAILED task is
 * a normal outcome a flow routes.
 */
import type { Node, NodeAPI, NodeDef } from 'node-red';
import { configNode, handleInput, Msg, requireString } from './lib/node-red';
import type { BenchlingTenantNode } from './lib/config-nodes';

interface PollTaskDef extends NodeDef {
  tenant: string;
  taskId: string;
  taskIdType: string;
  interval?: string | number;
  maxInterval?: string | number;
  timeout?: string | number;
}

function seconds(v: string | number | undefined, fallback: number): number {
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

export = function (RED: NodeAPI): void {
  function BenchlingPollTask(this: Node, def: PollTaskDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const intervalMs = seconds(def.interval, 5) * 1000;
    const maxIntervalMs = Math.max(intervalMs, seconds(def.maxInterval, 30) * 1000);
    const timeoutMs = seconds(def.timeout, 1800) * 1000;

    handleInput(
      node,
      async ({ msg, send, signal, status }) => {
        const tenant = configNode<BenchlingTenantNode>(RED, node, def.tenant, 'benchling-tenant');
        const taskId = await requireString(RED, node, 'task id', def.taskId || 'taskId', def.taskIdType || 'msg', msg);
        status('blue', 'polling');
        const task = await tenant.client().waitForTask(taskId, {
          intervalMs,
          maxIntervalMs,
          factor: 1.5,
          timeoutMs,
          signal,
          onWait: (reason) => status('yellow', reason, 'ring'),
          onPoll: ({ attempt, error }) =>
            status(error ? 'yellow' : 'blue', error ? `poll ${attempt}: ${error.code.toLowerCase()}, retrying` : `polling (${attempt})`, error ? 'ring' : 'dot'),
        });
        msg.taskId = taskId;
        msg.task = task;
        if (task.status === 'SUCCEEDED') {
          msg.payload = task.response ?? {};
          send([msg, null]);
        } else {
          msg.payload = { status: task.status, message: task.message ?? 'task failed', errors: task.errors };
          send([null, msg]);
        }
      },
      {
        doneStatus: (msg: Msg) => {
          const task = msg.task as { status?: string } | undefined;
          return task?.status === 'FAILED' ? 'FAILED' : 'SUCCEEDED';
        },
      },
    );
  }
  RED.nodes.registerType('benchling-poll-task', BenchlingPollTask as never);
};
