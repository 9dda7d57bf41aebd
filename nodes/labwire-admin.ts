/**
 * A Node-RED plugin: the operator's admin API (nodes/lib/operator-api.ts, docs/operator-api.md)
 * on the editor's admin app — same root, same login — with the permissions `labwire.read`
 * (list, health) and `labwire.write` (retry, skip), and live updates on the comms topic
 * `labwire/files`.
 *
 * Also removes the durable state (labwire-state/) of nodes deleted from the flows.
 */
import type { NodeAPI } from 'node-red';
import { actOnFile, ApiAnswer, COMMS_TOPIC, getFiles, getHealth, startLiveUpdates, stuckAfterMs, watcherSources } from './lib/operator-api';
import { translator } from './lib/node-red';
import { setFileCountsSource } from './lib/metrics';
import { countFiles } from './lib/journey/query';
import { removeNodeState } from './lib/journal';

interface Req {
  query: Record<string, unknown>;
  params: Record<string, string>;
  user?: { username?: unknown };
}
interface Res {
  status(code: number): Res;
  json(body: unknown): void;
  set(name: string, value: string): Res;
}
type Handler = (req: Req, res: Res, next: () => void) => void;

export = function (RED: NodeAPI): void {
  RED.plugins.registerPlugin('labwire-admin', { type: 'labwire-admin' } as never);
  // labwire_files{state} counts what this API lists (history counts kept by the index, not re-read per scrape).
  setFileCountsSource(() => countFiles(watcherSources()) as unknown as Promise<Record<string, number>>);
  const t = translator(RED, 'labwire-admin');
  const app = RED.httpAdmin as unknown as { get(path: string, ...h: Handler[]): void; post(path: string, ...h: Handler[]): void };

  /** Node-RED's permission check; a logged-in user without the permission gets 403 (it answers 401). */
  const permission = (p: string): Handler[] => [
    (req, res, next) => {
      const status = res.status.bind(res);
      res.status = (code: number) => status(code === 401 && req.user ? 403 : code);
      next();
    },
    RED.auth.needsPermission(p) as unknown as Handler,
  ];
  const answer = (res: Res, a: ApiAnswer): void => void res.status(a.status).set('Cache-Control', 'no-store').json(a.body);
  const by = (req: Req): string => (typeof req.user?.username === 'string' && req.user.username ? req.user.username : 'admin API');

  app.get('/labwire/files', ...permission('labwire.read'), (req, res) => {
    void getFiles(watcherSources(), req.query, t).then((a) => answer(res, a));
  });
  app.post('/labwire/files/:id/retry', ...permission('labwire.write'), (req, res) => {
    void actOnFile(watcherSources(), 'retry', req.params.id, by(req), t).then((a) => answer(res, a));
  });
  app.post('/labwire/files/:id/skip', ...permission('labwire.write'), (req, res) => {
    void actOnFile(watcherSources(), 'skip', req.params.id, by(req), t).then((a) => answer(res, a));
  });
  app.get('/labwire/health', ...permission('labwire.read'), (_req, res) => {
    void getHealth(watcherSources(), stuckAfterMs(RED)).then((a) => answer(res, a));
  });

  startLiveUpdates((data) => RED.comms.publish(COMMS_TOPIC, data, false), watcherSources);

  // A node deleted from the flows leaves its journal behind: remove it once the deploy that
  // deleted it has started. "Deleted" = in the previously started config, absent from this one.
  // A redeploy, a restart, or a disabled node or flow keeps the id in the config, so the state
  // stays (Node-RED's close(removed) is also true for a disabled node, hence not used). The
  // first start after a restart removes nothing: what was deployed before is unknown then.
  let startedIds: Set<string> | undefined;

  // Where the examples write by default (07's outcome log: `$env('LABWIRE_USER_DIR')` in JSONata):
  // the Node-RED user directory, which flows cannot otherwise name.
  if (!process.env.LABWIRE_USER_DIR && typeof RED.settings.userDir === 'string') process.env.LABWIRE_USER_DIR = RED.settings.userDir;
  const events = (RED as unknown as { events: { on(e: string, f: (ev: { config?: { flows?: unknown } }) => void): void } }).events;
  events.on('flows:started', (ev) => {
    const flows = ev?.config?.flows;
    if (!Array.isArray(flows)) return;
    const ids = new Set(flows.map((n: { id?: unknown }) => n?.id).filter((id): id is string => typeof id === 'string'));
    for (const id of startedIds ?? []) {
      if (ids.has(id)) continue;
      try {
        const removed = removeNodeState(RED.settings.userDir as string | undefined, id);
        if (removed.length) RED.log.info(t.shared('log.stateRemoved', { id, count: removed.length }));
      } catch (err) {
        RED.log.warn(`labwire-state: ${(err as Error).message}`);
      }
    }
    startedIds = ids;
  });
};
