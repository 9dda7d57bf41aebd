/**
 * `benchling-request`: any Benchling API v2 call through the tenant's authentication, rate
 * governor and retries — so a flow can log a result or update a run without handling keys in a
 * function node. Only paths below the tenant's API base are accepted: the credentials never go
 * anywhere else.
 */
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { BenchlingTenantNode } from './lib/config-nodes';
import type { Method } from './lib/http/client';
import { badInput } from './lib/http/errors';
import { checkApiPath } from './clients/benchling/client';
import { Settings } from './lib/settings';
import { configNode, handleInput, requireString, translator, waitStatus } from './lib/node-red';

interface RequestDef extends NodeDef {
  tenant: string;
  method?: Method | 'msg';
  path: string;
  pathType: string;
}

const METHODS: ReadonlySet<string> = new Set(['GET', 'POST', 'PATCH', 'PUT', 'DELETE']);

export = function (RED: NodeAPI): void {
  function BenchlingRequest(this: Node, def: RequestDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'benchling-request');
    const settings = new Settings(RED, node).uses(def.tenant, 'benchling-tenant');
    handleInput(
      RED,
      node,
      async ({ msg, send, signal, status }) => {
        const client = configNode<BenchlingTenantNode>(RED, node, def.tenant, 'benchling-tenant').client();
        const method = String(def.method === 'msg' || !def.method ? msg.method ?? 'GET' : def.method).toUpperCase();
        if (!METHODS.has(method)) throw badInput('benchling.badMethod', { method, methods: [...METHODS].join(', ') });
        const apiPath = checkApiPath(await requireString(RED, node, t('label.path'), def.path || 'path', def.pathType || 'msg', msg));
        const query = msg.query && typeof msg.query === 'object' ? (msg.query as Record<string, string | number | boolean>) : undefined;
        const hasBody = method !== 'GET' && method !== 'DELETE' && msg.payload !== undefined && msg.payload !== null && msg.payload !== '';
        if (hasBody && typeof msg.payload !== 'object') throw badInput('benchling.payloadNotObject', { method, type: typeof msg.payload });
        status('blue', `${method} ${apiPath}`.slice(0, 30));
        const res = await client.http.request({
          method: method as Method,
          path: apiPath,
          query,
          json: hasBody ? msg.payload : undefined,
          signal,
          onWait: waitStatus(t, status),
        });
        msg.payload = res.data;
        msg.statusCode = res.status;
        send(msg);
      },
      { settings, doneStatus: (msg) => `HTTP ${String(msg.statusCode)}` },
    );
  }
  RED.nodes.registerType('benchling-request', BenchlingRequest as never);
};
