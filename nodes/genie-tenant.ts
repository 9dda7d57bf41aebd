/**
 * `genie-tenant` config node: a Genie LabOS tenant's Public API URL and its API token (a Node-RED
 * credential, encrypted in flows_cred.json, never in flows.json). `${ENV}` works in both — expanded
 * for the deployed node (its flow's env, then the process environment): the user's own configuration. Every node using the
 * tenant shares one client.
 *
 * Also registers the editor's admin endpoints, used by the genie-command dialog to list
 * instruments, actions and an action's parameters:
 *   GET /labwire/genie/instruments?tenant=<config node id>
 *   GET /labwire/genie/instruments/:uid/actions?tenant=…
 *   GET /labwire/genie/instruments/:uid/actions/:name?tenant=…
 *   GET /labwire/genie/commands/:id/target — a DEPLOYED genie-command's own instrument and action,
 *       with `${ENV}` / env resolved on the runtime from that node's own settings (so a dialog
 *       showing `${GENIE_SHAKER}` can list the shaker's actions). The request only names the
 *       node; nothing it sends is expanded.
 *
 * Security design (these routes make Node-RED send an API token somewhere):
 *   (a) By id (`genie-tenant.read`): the deployed config node's own URL and token, resolved at
 *       deploy. Nothing from the request reaches the URL's host, the headers or the token; a `url`
 *       in the query is ignored.
 *   (b) Literal (`genie-tenant.read` AND `genie-tenant.write`): a tenant not deployed yet (or whose
 *       token was re-entered) — the URL in `url=` and the token in the `X-Genie-Token` header,
 *       exactly as typed into the open dialog. No `${…}` is ever expanded from request input: a
 *       value containing `${` is refused (400, "deploy first"), as is a URL that is not plain
 *       http(s) or carries a user name, password, query or fragment. Redirects are not followed
 *       (the client only requests paths relative to that URL, with redirects off), and errors
 *       never echo the URL or the token.
 *   Why (b) exists, and why it needs write: it lets the dialog list instruments before the first
 *   deploy. But it lets the caller make Node-RED request any URL (SSRF from the Node-RED host).
 *   Someone who may change flows (write) can already make Node-RED call any URL with an http
 *   request node, so (b) gives them nothing new; a read-only user cannot use it. The custom header
 *   also keeps it out of reach of cross-site requests (a browser cannot add it without a CORS
 *   preflight, which the admin API does not grant).
 */
import type { NodeAPI, NodeDef } from 'node-red';
import type { NextFunction, Request, Response } from 'express';
import type { GenieCommandNode, GenieTenantNode } from './lib/config-nodes';
import { GenieClient } from './clients/genie/client';
import { LabError, redact } from './lib/http/errors';
import { expandEnv, lazyClient, translator } from './lib/node-red';
import { Settings } from './lib/settings';

interface GenieTenantDef extends NodeDef {
  url: string;
  timeout?: string | number;
  caFile?: string;
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
  const canWrite = RED.auth.needsPermission('genie-tenant.write');

  /** The token typed into an open dialog (design (b) above), or '' for a deployed tenant by id. */
  function literalToken(req: Request): string {
    const token = String(req.get('x-genie-token') ?? '').trim();
    return token && token !== '__PWRD__' ? token : '';
  }

  /** (b) needs the write permission as well; (a) only the read permission checked before. */
  function writeForLiteral(req: Request, res: Response, next: NextFunction): void {
    if (literalToken(req)) canWrite(req, res, next);
    else next();
  }

  /** The client for a request, and whether it is a temporary one to close afterwards. */
  function clientFor(req: Request): { client: GenieClient; temporary: boolean } {
    const token = literalToken(req);
    if (token) {
      const url = typeof req.query.url === 'string' ? req.query.url.trim() : '';
      if (!url) throw new LabError('BAD_INPUT', 'genie.editorNoUrl');
      // Literal values only: `${…}` would be the process environment, which the request must not reach.
      if (url.includes('${') || token.includes('${')) throw new LabError('BAD_INPUT', 'genie.editorEnvRefused');
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw new LabError('BAD_INPUT', 'genie.editorUrlInvalid');
      }
      if ((parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || parsed.username || parsed.password || parsed.search || parsed.hash || url.includes('#')) {
        throw new LabError('BAD_INPUT', 'genie.editorUrlInvalid');
      }
      return { client: new GenieClient({ url, token, timeoutMs: 15_000, retries: 0 }), temporary: true };
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

  RED.httpAdmin.get('/labwire/genie/commands/:id/target', canRead, (req: Request, res: Response) => {
    const node = RED.nodes.getNode(String(req.params.id)) as unknown as (GenieCommandNode & { type?: string }) | null;
    if (!node || node.type !== 'genie-command' || typeof node.genieTarget !== 'function') {
      res.status(404).json({ error: t('editor.commandNotDeployed') });
      return;
    }
    node.genieTarget().then(
      (target) => res.set('Cache-Control', 'no-store').json(target),
      () => res.status(500).json({ error: t('editor.commandNotDeployed') }),
    );
  });

  RED.httpAdmin.get(
    '/labwire/genie/instruments',
    canRead,
    writeForLiteral,
    endpoint(async (client, _req, signal) => (await client.listInstruments(signal)).map((i) => ({ uid: i.uid, name: i.name ?? i.uid, type: i.type, status: i.status }))),
  );
  RED.httpAdmin.get(
    '/labwire/genie/instruments/:uid/actions',
    canRead,
    writeForLiteral,
    endpoint(async (client, req, signal) => client.listActions(String(req.params.uid), signal)),
  );
  RED.httpAdmin.get(
    '/labwire/genie/instruments/:uid/actions/:name',
    canRead,
    writeForLiteral,
    endpoint(async (client, req, signal) => client.getAction(String(req.params.uid), String(req.params.name), signal)),
  );
};
