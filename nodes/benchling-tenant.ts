/**
 * `benchling-tenant` config node: where the tenant is and how to authenticate. The API key is a
 * Node-RED credential (encrypted in flows_cred.json, never in flows.json); `${ENV}` works in the
 * URL and the key. Every node that uses this tenant gets the same client, so they share one rate
 * governor and one connection pool.
 */
import type { NodeAPI, NodeDef } from 'node-red';
import type { BenchlingTenantNode } from './lib/config-nodes';
import { BenchlingClient, DEFAULT_RATE_LIMIT } from './clients/benchling/client';

interface BenchlingTenantDef extends NodeDef {
  url: string;
  rateLimit?: string | number;
  timeout?: string | number;
  caFile?: string;
}


export = function (RED: NodeAPI): void {
  function BenchlingTenant(this: BenchlingTenantNode, def: BenchlingTenantDef) {
    RED.nodes.createNode(this, def);
    let client: BenchlingClient | null = null;
    const limit = Number(def.rateLimit) > 0 ? Number(def.rateLimit) : DEFAULT_RATE_LIMIT.limit;
    const timeoutMs = Number(def.timeout) > 0 ? Number(def.timeout) * 1000 : 30_000;
    this.client = () => {
      if (!client) {
        client = new BenchlingClient({
          tenantUrl: def.url,
          apiKey: this.credentials?.apiKey ?? '',
          rateLimit: { limit, windowMs: DEFAULT_RATE_LIMIT.windowMs },
          timeoutMs,
          network: { caFile: def.caFile?.trim() || undefined },
        });
      }
      return client;
    };
    this.on('close', (done: () => void) => {
      client?.close();
      client = null;
      done();
    });
  }
  RED.nodes.registerType('benchling-tenant', BenchlingTenant as never, {
    credentials: { apiKey: { type: 'password' } },
  });
};
