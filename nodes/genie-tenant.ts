/**
 * `genie-tenant` config node: a Genie LabOS tenant's Public API URL and its API token (a Node-RED
 * credential, encrypted in flows_cred.json, never in flows.json). `${ENV}` works in both. Every
 * node using the tenant shares one client.
 *
 * Also registers the editor's admin endpoints (guarded by `genie-tenant.read`), used by the
 * genie-command dialog to list instruments, actions and an action's parameters:
 *   GET /labwire/genie/instruments?tenant=<config node id>
 *   GET /labwire/genie/instruments/:uid/actions?tenant=…
 *   GET /labwire/genie/instruments/:uid/actions/:name?tenant=…
 * A deployed tenant is used by id, with the credentials the runtime holds. A tenant not deployed
 * yet (or edited) can be used by sending `url=` in the query and the token in the
 * `X-Genie-Token` header (never in a URL); without either the answer says "deploy first".
 */
import type { NodeAPI, NodeDef } from 'node-red';
import type { Request, Response } from 'express';
import type { GenieTenantNode } from './lib/config-nodes';
import { GenieClient } from './clients/genie/client';
import { LabError, redact } from './lib/http/errors';
import { expandEnv, lazyClient, translator } from './lib/node-red';
import { Settings } from './lib/settings';

interface GenieTenantDef extends NodeDef {
  url: string;
  timeout?: string | number;
  caFile?: string;
}

/** `${VAR}` anywhere in a value, from the process environment (Node-RED only maps whole values). */
function env(value: string | undefined): string {
  return (value ?? '').replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => process.env[name] ?? '').trim();
}

export = function (RED: NodeAPI): void {
  const t = translator(RED, 'genie-tenant');

  function GenieTenant(this: GenieTenantNode, def: GenieTenantDef) {
    RED.nodes.createNode(this, def);
    const s = new Settings(RED, this);
    const timeoutMs = s.seconds(t('label.timeout'), def.timeout, { default: 30, min: 0.1 });
    this.settingsProblem = () => s.ownProblem();
    this.client = lazyClient(this, () =>
      new GenieClient({
        url: expandEnv(RED, this, t('label.url'), def.url),
        token: expandEnv(RED, this, t('label.token'), this.credentials?.token),
        timeoutMs,
        network: { caFile: def.caFile?.trim() || undefined },
      }),
    );
  }
  RED.nodes.registerType('genie-tenant', GenieTenant as never, {
    credentials: { token: { type: 'password' } },
  });

  // ------------------------------------------------------------------ editor admin endpoints

  const canRead = RED.auth.needsPermission('genie-tenant.read');

  /** The client for a request, and whether it is a temporary one to close afterwards. */
  function clientFor(req: Request): { client: GenieClient; temporary: boolean } {
    const token = String(req.get('x-genie-token') ?? '');
    const url = typeof req.query.url === 'string' ? req.query.url : '';
    if (token && token !== '__PWRD__') {
      if (!url) throw new LabError('BAD_INPUT', 'genie.editorNoUrl');
      return { client: new GenieClient({ url: env(url), token: env(token), timeoutMs: 15_000, retries: 0 }), temporary: true };
    }
    const id = typeof req.query.tenant === 'string' ? req.query.tenant : '';
    const node = id ? (RED.nodes.getNode(id) as unknown as GenieTenantNode | null) : null;
    if (!node || (node as unknown as { type?: string }).type !== 'genie-tenant' || typeof node.client !== 'function') {
      throw new LabError('BAD_INPUT', id ? 'genie.editorNotDeployed' : 'genie.editorNoTenant');
    }
    return { client: node.client(), temporary: false };
  }

  function endpoint(work: (client: GenieClient, req: Request, signal: AbortSignal) => Promise<unknown>) {
    return (req: Request, res: Response) => {
      const controller = new AbortController();
      res.on('close', () => {
        if (!res.writableEnded) controller.abort(new Error('editor request closed'));
      });
      let handle: { client: GenieClient; temporary: boolean } | undefined;
      Promise.resolve()
        .then(() => {
          handle = clientFor(req);
          return work(handle.client, req, controller.signal);
        })
        .then(
          (data) => res.json(data),
          (err: unknown) => {
            const status = err instanceof LabError ? (err.code === 'BAD_INPUT' ? 400 : err.status === 404 ? 404 : 502) : 500;
            if (!res.headersSent) res.status(status).json({ error: redact(t.error(err).message) });
          },
        )
        .finally(() => {
          if (handle?.temporary) handle.client.close();
        });
    };
  }

  RED.httpAdmin.get(
    '/labwire/genie/instruments',
    canRead,
    endpoint(async (client, _req, signal) => (await client.listInstruments(signal)).map((i) => ({ uid: i.uid, name: i.name ?? i.uid, type: i.type, status: i.status }))),
  );
  RED.httpAdmin.get(
    '/labwire/genie/instruments/:uid/actions',
    canRead,
    endpoint(async (client, req, signal) => client.listActions(String(req.params.uid), signal)),
  );
  RED.httpAdmin.get(
    '/labwire/genie/instruments/:uid/actions/:name',
    canRead,
    endpoint(async (client, req, signal) => client.getAction(String(req.params.uid), String(req.params.name), signal)),
  );
};
