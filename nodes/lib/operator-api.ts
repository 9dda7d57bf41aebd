/**
 * The operator's admin API (docs/operator-api.md): the files of every `lab-watch-folder` with their
 * journeys, retry and skip by hand, a health answer, and live updates over the editor's comms.
 * Served on Node-RED's admin app (same root and login as the editor) with the permissions
 * `labwire.read` and `labwire.write`. The handlers here know nothing of Express beyond a request's
 * query, params and user, so they are tested without a server.
 */
import * as fs from 'fs';
import type { NodeAPI } from 'node-red';
import { badInput, describeError, LabError } from './http/errors';
import {
  countFiles,
  fileView,
  findFinished,
  findLive,
  historyIndex,
  ID_RE,
  isOperatorWatcher,
  journeyEvents,
  journeyOwners,
  listFiles,
  liveState,
  parseFileQuery,
  warmUp,
  type JourneyHistory,
  type OperatorWatcher,
  type WatcherSource,
} from './journey';
import type { Translate } from './node-red';

export const DEFAULT_STUCK_MINUTES = 60;
/** Live updates at most this often (ms). */
export const PUBLISH_EVERY_MS = 500;
export const COMMS_TOPIC = 'labwire/files';

export interface ApiAnswer {
  status: number;
  body: unknown;
}

/** What a watcher offers the actions and the health answer, beyond the listing. */
interface ActingWatcher extends OperatorWatcher {
  retry(ref: string): Promise<{ outcome: string }>;
  skip(ref: string, by: string): Promise<{ outcome: string }>;
  activity?(): { lastFileSeenAt?: number; lastDoneAt?: number };
}

/** The registered watchers that can be shown (lab-watch-folder nodes). */
export function watcherSources(): WatcherSource[] {
  const out: WatcherSource[] = [];
  for (const [id, owner, info] of journeyOwners()) if (isOperatorWatcher(owner)) out.push({ id, name: info.name ?? '', watcher: owner });
  return out;
}

function errorAnswer(status: number, err: LabError, t?: Translate): ApiAnswer {
  const told = t ? t.error(err) : err;
  return { status, body: { error: { code: err.code, message: told.message } } };
}

/** Any failure as an answer: a LabError by its code, anything else as a 500 without details. */
export function failureAnswer(err: unknown, t?: Translate): ApiAnswer {
  if (err instanceof LabError) {
    const status = err.code === 'BAD_INPUT' ? 400 : err.code === 'UNAVAILABLE' ? 503 : 500;
    return errorAnswer(status, err, t);
  }
  return { status: 500, body: { error: { code: 'INTERNAL', message: describeError(err) } } };
}

/** `GET /labwire/files` */
export async function getFiles(sources: WatcherSource[], query: Record<string, unknown>, t?: Translate): Promise<ApiAnswer> {
  try {
    const q = parseFileQuery(query);
    return { status: 200, body: await listFiles(sources, q) };
  } catch (err) {
    return failureAnswer(err, t);
  }
}

const RETRYABLE = new Set(['failed', 'retrying']);
const SKIPPABLE = new Set(['in-progress', 'retrying', 'failed']);

/** `POST /labwire/files/:id/retry` and `…/skip` */
export async function actOnFile(sources: WatcherSource[], action: 'retry' | 'skip', id: unknown, by: string, t?: Translate): Promise<ApiAnswer> {
  try {
    if (typeof id !== 'string' || !ID_RE.test(id)) throw badInput('operator.badId');
    const found = findLive(sources, id);
    const allowed = action === 'retry' ? RETRYABLE : SKIPPABLE;
    const refuse = (name: string, state: string): ApiAnswer =>
      errorAnswer(409, new LabError('BAD_INPUT', action === 'retry' ? 'operator.cannotRetry' : 'operator.cannotSkip', { name, state }), t);
    if (!found) {
      const finished = await findFinished(sources, id);
      if (finished) return refuse(finished.name, finished.state);
      return errorAnswer(404, new LabError('BAD_INPUT', 'operator.noSuchFile', { id }), t);
    }
    if (!found.record || !allowed.has(found.view.state)) return refuse(found.view.name, found.view.state);
    const w = found.src.watcher as ActingWatcher;
    const result = action === 'retry' ? await w.retry(id) : await w.skip(id, by);
    if (result.outcome === 'unknown') return errorAnswer(409, new LabError('BAD_INPUT', 'operator.gone', { name: found.view.name }), t);
    // The record as it is now (a retry gives it a new attempt; a skip makes it done).
    for (const [rel, rec] of w.journeys()) {
      if (rec.id === id) return { status: 200, body: { file: fileView(found.src, rel, found.view.path, rec, liveState(rec.state)) } };
    }
    return { status: 200, body: { file: { ...found.view, state: action === 'skip' ? 'done' : found.view.state } } };
  } catch (err) {
    return failureAnswer(err, t);
  }
}

async function folderReachable(folder: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(folder)).isDirectory();
  } catch {
    return false;
  }
}

/** The newest done journey in a watcher's history (a few lines read), for lastSuccess after a restart. */
function lastDoneInHistory(w: OperatorWatcher): number | undefined {
  const h = w.historyStore();
  if (!h) return undefined;
  const ix = historyIndex(h as JourneyHistory<object>);
  const pos = ix.newest();
  if (!pos) return undefined;
  let n = 0;
  for (const line of ix.from(pos)) {
    if (++n > 200) break;
    if (!line.raw.includes('"state":"done"')) continue;
    try {
      const rec = JSON.parse(line.raw) as { doneAt?: number };
      if (typeof rec.doneAt === 'number') return rec.doneAt;
    } catch {
      /* torn */
    }
  }
  return undefined;
}

function iso(ms: number | undefined): string | null {
  return typeof ms === 'number' ? new Date(ms).toISOString() : null;
}

/** `GET /labwire/health`: 200 when every folder is reachable and nothing is stuck, else 503. */
export async function getHealth(sources: WatcherSource[], stuckAfterMs: number, now = Date.now()): Promise<ApiAnswer> {
  const watchers = await Promise.all(
    sources.map(async (s) => {
      const w = s.watcher as ActingWatcher;
      let stuck = 0;
      for (const [, rec] of w.journeys()) {
        if (liveState(rec.state) !== 'in-progress') continue;
        const since = rec.state === 'acked' ? (rec.ackedAt ?? rec.emittedAt) : rec.emittedAt;
        if (now - since > stuckAfterMs) stuck++;
      }
      const a = w.activity?.() ?? {};
      return {
        id: s.id,
        name: s.name,
        folder: w.folder,
        folderReachable: await folderReachable(w.folder),
        lastFileSeen: iso(a.lastFileSeenAt),
        lastSuccess: iso(a.lastDoneAt ?? lastDoneInHistory(w)),
        stuck,
      };
    }),
  );
  const healthy = watchers.every((w) => w.folderReachable && w.stuck === 0);
  return { status: healthy ? 200 : 503, body: { status: healthy ? 'ok' : 'unhealthy', watchers } };
}

/** The stuck threshold from settings.js (`labwire: { stuckAfterMinutes }`), in ms. */
export function stuckAfterMs(RED: NodeAPI): number {
  let v: unknown;
  try {
    v = (RED.settings as unknown as { labwire?: { stuckAfterMinutes?: unknown } }).labwire?.stuckAfterMinutes;
  } catch {
    v = undefined;
  }
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() ? Number(v) : NaN;
  return (Number.isFinite(n) && n > 0 ? n : DEFAULT_STUCK_MINUTES) * 60_000;
}

/**
 * Live updates: each journey change (and each watcher coming or going) is collected, and at most
 * every PUBLISH_EVERY_MS the counts and the changed ids go out on `labwire/files`. Returns the stop function.
 */
export function startLiveUpdates(publish: (data: { counts: unknown; changed: string[] }) => void, sources: () => WatcherSource[]): () => void {
  const changed = new Set<string>();
  let timer: NodeJS.Timeout | null = null;
  let warm: NodeJS.Timeout | null = null;
  const flush = async (): Promise<void> => {
    const ids = [...changed];
    changed.clear();
    try {
      publish({ counts: await countFiles(sources()), changed: ids });
    } catch {
      /* a closing watcher: the next change publishes again */
    } finally {
      timer = null;
      if (changed.size) schedule();
    }
  };
  const schedule = (): void => {
    if (!timer) {
      timer = setTimeout(() => void flush(), PUBLISH_EVERY_MS);
      timer.unref();
    }
  };
  const onChanged = (_owner: string, id: string): void => {
    if (typeof id === 'string') changed.add(id);
    schedule();
  };
  const onOwners = (): void => {
    schedule();
    // Count the histories in the background, so the first listing does not wait for it.
    if (!warm) {
      warm = setTimeout(() => {
        warm = null;
        warmUp(sources());
      }, 1000);
      warm.unref();
    }
  };
  journeyEvents.on('changed', onChanged);
  journeyEvents.on('owners', onOwners);
  return () => {
    journeyEvents.off('changed', onChanged);
    journeyEvents.off('owners', onOwners);
    if (timer) clearTimeout(timer);
    if (warm) clearTimeout(warm);
  };
}
