/**
 * A typed Genie LabOS Public API client (instruments, actions, commands), usable without
 * Node-RED. All traffic goes through the shared HttpClient (timeouts, retries, proxy, CA, error
 * wording, redaction); following a command uses the shared poller.
 *
 * Contract: ../shared/reference/bioaf-genie-api.md §2. Confirmed there: Bearer token, the
 * `{"data": …}` envelope, `GET /instruments`, `GET /instruments/{uid}`, `GET …/actions`,
 * `GET …/actions/{name}`. UNCONFIRMED (brief only), implemented as described and marked below:
 * `POST /instruments/{uid}/commands` with `{action, values:[{parameterId, value}]}`, the Command
 * object and its statuses, `GET …/commands/{cid}`, `POST …/commands/{cid}/kill`,
 * `DELETE …/commands/{cid}`, the error body shape.
 */
import { HttpClient, HttpClientOptions, type ApiErrorDescription, type OnWait } from '../../lib/http/client';
import { badInput, LabError, registerSecret } from '../../lib/http/errors';
import { messageRef, type MessageRef } from '../../lib/messages';
import type { NetworkOptions } from '../../lib/http/network';
import { pollUntil, PollOptions } from '../../lib/poll';
import { validateValues, ValuesInput } from './schema';
import type { GenieAction, GenieCommand, GenieCommandValue, GenieInstrument } from './types';

export interface GenieClientOptions {
  /** The "Public API URL" shown above the tokens table in LabOS (most likely ending in /public/v1). */
  url: string;
  /** The API token (Preferences › Manage API Tokens), sent as a Bearer token. */
  token: string;
  timeoutMs?: number;
  retries?: number;
  backoff?: { baseMs: number; maxMs: number };
  network?: NetworkOptions;
}


/** Checks the Public API URL the user pasted and returns it without a trailing slash. */
export function genieApiBase(input: string): string {
  const raw = (input || '').trim();
  if (!raw) throw badInput('genie.apiUrlMissing');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badInput('genie.apiUrlInvalid', { url: raw });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw badInput('genie.apiUrlScheme', { url: raw });
  if (url.search || url.hash) throw badInput('genie.apiUrlQuery', { url: raw });
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** Responses come wrapped in `data` (documented); a bare body is accepted too. */
export function unwrap<T>(body: unknown): T {
  if (body && typeof body === 'object' && !Array.isArray(body) && 'data' in body) {
    // `{data: …}`, possibly next to metadata (pagination is UNCONFIRMED). A bare object that
    // merely has a `data` field is recognised by its own identifying fields.
    const own = ['id', '_id', 'uid', 'status', 'action', 'parameters'].some((k) => k in (body as object));
    if (!own) return (body as { data: T }).data;
  }
  return body as T;
}

/**
 * The error body shape is UNCONFIRMED. Accepted: `{error: "…"}`, `{error: {message}}`,
 * `{message: "…"}`, `{errors: [...]}`, any of these inside `data`.
 */
export function describeGenieError(status: number, body: unknown): ApiErrorDescription | undefined {
  const b = unwrap<Record<string, unknown>>(body);
  if (!b || typeof b !== 'object') return undefined;
  const e = b.error;
  let text: string | undefined;
  if (typeof e === 'string') text = e;
  else if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') text = (e as { message: string }).message;
  else if (typeof b.message === 'string') text = b.message;
  else if (Array.isArray(b.errors)) text = b.errors.map((x) => (typeof x === 'string' ? x : (x as { message?: string })?.message ?? JSON.stringify(x))).join('; ');
  if (!text) return undefined;
  const notes: MessageRef[] = [];
  if (status === 401) notes.push(messageRef('genie.tokenRejected'));
  if (status === 403) notes.push(messageRef('genie.tokenNoAccess'));
  return { message: text, notes, apiError: b };
}

/** UNCONFIRMED statuses beyond running/success/failure are mapped conservatively. */
export function commandOutcome(status: unknown): 'running' | 'success' | 'failure' {
  const s = String(status ?? '').toLowerCase();
  if (s === 'success' || s === 'succeeded' || s === 'completed' || s === 'done') return 'success';
  if (s === 'failure' || s === 'failed' || s === 'error' || s === 'killed' || s === 'cancelled' || s === 'canceled' || s === 'aborted') return 'failure';
  return 'running'; // running, pending, queued, unknown: keep following until the timeout
}

/**
 * One path segment (an instrument uid, an action name, a command id). `.` and `..` are refused:
 * URL parsing resolves them (even percent-encoded), so `..` would reach another path of the
 * Genie host with the tenant's token.
 */
function enc(segment: string): string {
  if (/^(\.|%2e){1,2}$/i.test(segment)) throw badInput('genie.badPathSegment', { value: segment });
  return encodeURIComponent(segment);
}

export class GenieClient {
  readonly http: HttpClient;
  readonly apiBase: string;

  constructor(o: GenieClientOptions) {
    this.apiBase = genieApiBase(o.url);
    const token = (o.token || '').trim();
    if (!token) throw badInput('genie.tokenMissing');
    registerSecret(token);
    const opts: HttpClientOptions = {
      service: 'Genie LabOS',
      baseUrl: this.apiBase,
      auth: () => ({ Authorization: `Bearer ${token}` }),
      timeoutMs: o.timeoutMs,
      // The poller retries a command's status itself; keep single requests' retries short.
      retries: o.retries ?? 2,
      backoff: o.backoff ?? { baseMs: 500, maxMs: 5000 },
      network: o.network,
      describeApiError: describeGenieError,
    };
    this.http = new HttpClient(opts);
  }

  private async get<T>(path: string, signal?: AbortSignal, onWait?: OnWait): Promise<T> {
    const res = await this.http.request<unknown>({ method: 'GET', path, signal, onWait });
    return unwrap<T>(res.data);
  }

  async listInstruments(signal?: AbortSignal): Promise<GenieInstrument[]> {
    const list = await this.get<unknown>('/instruments', signal);
    if (!Array.isArray(list)) throw new LabError('BAD_RESPONSE', 'genie.notAList', { path: '/instruments' });
    return list.map((i) => normalizeInstrument(i));
  }

  async getInstrument(uid: string, signal?: AbortSignal): Promise<GenieInstrument> {
    return normalizeInstrument(await this.get<unknown>(`/instruments/${enc(uid)}`, signal));
  }

  async listActions(uid: string, signal?: AbortSignal): Promise<GenieAction[]> {
    const list = await this.get<unknown>(`/instruments/${enc(uid)}/actions`, signal);
    if (!Array.isArray(list)) throw new LabError('BAD_RESPONSE', 'genie.notAList', { path: `/instruments/${uid}/actions` });
    return list.map((a) => normalizeAction(a));
  }

  /**
   * One action's definition. A 404 is told apart: an unknown instrument, or an instrument that
   * has no such action (then the error lists the actions it has).
   */
  async getAction(uid: string, name: string, signal?: AbortSignal, onWait?: OnWait): Promise<GenieAction> {
    try {
      return normalizeAction(await this.get<unknown>(`/instruments/${enc(uid)}/actions/${enc(name)}`, signal, onWait));
    } catch (err) {
      if (!(err instanceof LabError) || err.status !== 404) throw err;
      let actions: GenieAction[];
      try {
        actions = await this.listActions(uid, signal);
      } catch (e2) {
        if (e2 instanceof LabError && e2.status === 404) {
          throw new LabError('HTTP', 'genie.unknownInstrument', { uid }, { status: 404, apiError: e2.apiError });
        }
        throw err;
      }
      const names = actions.map((a) => `"${a.action}"`).join(', ');
      throw new LabError(
        'HTTP',
        names ? 'genie.noSuchAction' : 'genie.noSuchActionNone',
        { uid, action: name, actions: names },
        { status: 404, apiError: err.apiError },
      );
    }
  }

  /**
   * Validates `values` against the action (throws BAD_INPUT, nothing sent) and creates the command.
   * UNCONFIRMED body shape `{action, values:[{parameterId, value}]}`; parameterId is the
   * parameter's id (unique; the docs allow names too). Not retried on a timeout or 5xx: a retry
   * could start the instrument twice.
   */
  async runCommand(uid: string, action: GenieAction, values: ValuesInput, signal?: AbortSignal, onWait?: OnWait): Promise<GenieCommand> {
    const checked = validateValues(action, values);
    return this.createCommand(uid, action.action, checked, signal, onWait);
  }

  /** Creates a command WITHOUT client-side validation (use runCommand). */
  async createCommand(uid: string, action: string, values: GenieCommandValue[], signal?: AbortSignal, onWait?: OnWait): Promise<GenieCommand> {
    const res = await this.http.request<unknown>({
      method: 'POST',
      path: `/instruments/${enc(uid)}/commands`,
      json: { action, values },
      signal,
      onWait,
    });
    return normalizeCommand(unwrap(res.data), `POST /instruments/${uid}/commands`);
  }

  async getCommand(uid: string, cid: string, signal?: AbortSignal, onWait?: OnWait): Promise<GenieCommand> {
    return normalizeCommand(await this.get<unknown>(`/instruments/${enc(uid)}/commands/${enc(cid)}`, signal, onWait), `GET /instruments/${uid}/commands/${cid}`);
  }

  /** Kills a running command. Sending it twice is harmless, so it is retried like a GET. */
  async killCommand(uid: string, cid: string, signal?: AbortSignal, timeoutMs?: number): Promise<void> {
    await this.http.request({ method: 'POST', path: `/instruments/${enc(uid)}/commands/${enc(cid)}/kill`, idempotent: true, signal, timeoutMs });
  }

  /** Deletes a command (idempotent). */
  async deleteCommand(uid: string, cid: string, signal?: AbortSignal): Promise<void> {
    await this.http.request({ method: 'DELETE', path: `/instruments/${enc(uid)}/commands/${enc(cid)}`, signal });
  }

  /** Follows a command with the shared poller until success or failure (transient errors tolerated). */
  waitForCommand(uid: string, cid: string, o: Omit<PollOptions, 'what'> & { onWait?: OnWait }): Promise<GenieCommand> {
    return pollUntil(
      () => this.getCommand(uid, cid, o.signal, o.onWait),
      (c) => commandOutcome(c.status) !== 'running',
      { ...o, what: messageRef('genie.commandRef', { id: cid }) },
    );
  }

  /** Keeps the connections open through a close() until released (see HttpClient.hold). */
  hold(): () => void {
    return this.http.hold();
  }

  close(): void {
    this.http.close();
  }
}

function normalizeInstrument(raw: unknown): GenieInstrument {
  const i = (raw ?? {}) as Record<string, unknown>;
  // The instrument object's fields are UNCONFIRMED: accept uid, id or _id.
  const uid = i.uid ?? i.id ?? i._id;
  if (typeof uid !== 'string' || !uid) throw new LabError('BAD_RESPONSE', 'genie.instrumentWithoutId', { json: String(JSON.stringify(raw)).slice(0, 200) });
  return { ...i, uid, name: typeof i.name === 'string' ? i.name : undefined };
}

function normalizeAction(raw: unknown): GenieAction {
  const a = (raw ?? {}) as Record<string, unknown>;
  const name = a.action ?? a.name;
  if (typeof name !== 'string' || !name) throw new LabError('BAD_RESPONSE', 'genie.actionWithoutName', { json: String(JSON.stringify(raw)).slice(0, 200) });
  const params = Array.isArray(a.parameters) ? a.parameters : [];
  return {
    ...a,
    action: name,
    parameters: params.map((p: Record<string, unknown>) => ({
      ...p,
      id: String(p.id ?? p._id ?? p.name),
      name: String(p.name ?? p.id ?? p._id),
      type: String(p.type ?? ''),
    })),
  };
}

function normalizeCommand(raw: unknown, what: string): GenieCommand {
  const c = (raw ?? {}) as Record<string, unknown>;
  const id = c.id ?? c._id;
  if (typeof id !== 'string' || !id) throw new LabError('BAD_RESPONSE', 'genie.commandWithoutId', { request: what });
  if (typeof c.status !== 'string') throw new LabError('BAD_RESPONSE', 'genie.commandWithoutStatus', { request: what });
  return { ...c, id, status: c.status };
}
