/**
 * `benchling-tenant` config node: where the tenant is and how to authenticate. The API key is a
 * Node-RED credential (encrypted in flows_cred.json, never in flows.json); `${ENV}` works in the
 * URL and the key. Every node that uses this tenant gets the same client, so they share one rate
 * governor and one connection pool.
 */
import type { NodeAPI, NodeDef } from 'node-red';
import type { BenchlingTenantNode } from './lib/config-nodes';
import { BenchlingClient, DEFAULT_RATE_LIMIT } from './clients/benchling/client';
import { describeError } from './lib/http/errors';
import { lazyClient, translator } from './lib/node-red';
import { Settings } from './lib/settings';

interface BenchlingTenantDef extends NodeDef {
  url: string;
  /** 'apiKey' (default): a user's API key; 'oauth': a Benchling App's client credentials. */
  authType?: 'apiKey' | 'oauth';
  rateLimit?: string | number;
  timeout?: string | number;
  caFile?: string;
  /** Optional: a Redis server holding the tenant's rate budget for all Node-REDs (`${ENV}` allowed). */
  redisUrl?: string;
}


export = function (RED: NodeAPI): void {
  const t = translator(RED, 'benchling-tenant');
  function BenchlingTenant(this: BenchlingTenantNode, def: BenchlingTenantDef) {
    RED.nodes.createNode(this, def);
    // Unusable settings do not stop the config node: the nodes using it report them.
    const s = new Settings(RED, this);
    const limit = s.integer(t('label.rateLimit'), def.rateLimit, { default: DEFAULT_RATE_LIMIT.limit, min: 1 });
    const timeoutMs = s.seconds(t('label.timeout'), def.timeout, { default: 30, min: 0.1 });
    const redisUrl = s.env(t('label.redisUrl'), def.redisUrl) || undefined;
    this.settingsProblem = () => s.ownProblem();
    // Shown by every node of the tenant (yellow) while the Redis budget is down and headers pace.
    let sharedProblem: ReturnType<typeof t.error> | undefined;
    this.warning = () => sharedProblem;
    this.client = lazyClient(this, () => {
        const creds = this.credentials ?? {};
        return new BenchlingClient({
          tenantUrl: def.url,
          ...(def.authType === 'oauth'
            ? { oauth: { clientId: creds.clientId ?? '', clientSecret: creds.clientSecret ?? '' } }
            : { apiKey: creds.apiKey ?? '' }),
          rateLimit: { limit, windowMs: DEFAULT_RATE_LIMIT.windowMs },
          timeoutMs,
          network: { caFile: def.caFile?.trim() || undefined },
          // The tenant's spent window survives a restart (no 429 burst right after one).
          stateDir: RED.settings.userDir,
          onStateError: (err) => this.warn(t.error(err).message),
          redisUrl,
          redisPassword: creds.redisPassword || undefined,
          onSharedProblem: (err) => {
            sharedProblem = err && t.error(err);
            if (sharedProblem) this.warn(sharedProblem.message);
          },
        });
    });
  }
  // Editor help: the run schemas of a deployed tenant, with their input and output file config
  // names, so users pick instead of typing ids. Read permission on the tenant type is required.
  RED.httpAdmin.get('/labwire/benchling/tenants/:id/schemas', RED.auth.needsPermission('benchling-tenant.read'), (req, res) => {
    const tenant = RED.nodes.getNode(String(req.params.id)) as unknown as BenchlingTenantNode | null;
    if (!tenant || tenant.type !== 'benchling-tenant') {
      // The editor shows its own translation of `code`; `error` is the same text in the runtime's language.
      res.status(404).json({ code: 'NOT_DEPLOYED', error: t('picker.notDeployed') });
      return;
    }
    Promise.resolve()
      .then(() => tenant.client().listAssayRunSchemas())
      .then((schemas) =>
        res.json(
          schemas.map((s) => ({
            id: s.id,
            name: s.name,
            inputConfigs: (s.automationInputFileConfigs ?? []).map((c) => c.name),
            outputConfigs: (s.automationOutputFileConfigs ?? []).map((c) => c.name),
          })),
        ),
      )
      .catch((err) => res.status(502).json({ error: describeError(t.error(err)) }));
  });

  RED.nodes.registerType('benchling-tenant', BenchlingTenant as never, {
    credentials: { apiKey: { type: 'password' }, clientId: { type: 'text' }, clientSecret: { type: 'password' }, redisPassword: { type: 'password' } },
  });
};
