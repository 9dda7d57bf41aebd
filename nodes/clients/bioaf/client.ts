/**
 * A typed client for bioAF's Integration API (`/api/v1/integrations`), usable without Node-RED.
 * All traffic goes through the shared HttpClient (retries, proxy, CA, redaction).
 *
 * bioAF's POST is strict (409 `external_id_already_exists` on a duplicate), so `upsert` is done
 * here, client-side: look the record up by external id, PATCH only what differs, or create it
 * with an Idempotency-Key derived from the request itself (so a retry — after a timeout, a
 * redeploy or a crash — sends the same key and bioAF replays its first answer instead of creating
 * a second record). A create that loses a race (409) looks the record up again and PATCHes it.
 */
import { createHash } from 'crypto';
import { HttpClient, type ApiErrorDescription, type OnWait } from '../../lib/http/client';
import { badInput, LabError, registerSecret, requireField } from '../../lib/http/errors';
import type { NetworkOptions } from '../../lib/http/network';
import { errorText, messageRef, type MessageKey } from '../../lib/messages';
import { canonicalJson, checkExternalId, collection, createBody, diffRecord, planWrite, Resource, WritePlan } from './fields';

export * from './fields';

export const API_PATH = '/api/v1/integrations';

export interface BioafClientOptions {
  /** `https://<host>` or the full base `https://<host>/api/v1/integrations`. */
  url: string;
  /** `biokey_<prefix>.<secret>` (a leading `Bearer ` is accepted). */
  apiKey: string;
  timeoutMs?: number;
  retries?: number;
  backoff?: { baseMs: number; maxMs: number };
  network?: NetworkOptions;
}

export type BioafRecord = Record<string, unknown> & { id: number; external_id?: string | null };

export interface Page<T = BioafRecord> {
  items: T[];
  next_cursor: string | null;
}

export type UpsertAction = 'created' | 'updated' | 'unchanged';

export interface UpsertResult {
  record: BioafRecord;
  action: UpsertAction;
  /** Fields sent in the PATCH (custom fields as `custom_fields.<name>`). */
  changed: string[];
  /** The create was answered from bioAF's idempotency cache (a retry of an earlier create). */
  replayed?: boolean;
  /** A create lost a race to another writer (409) and became an update. */
  raced?: boolean;
  idempotencyKey?: string;
}

/**
 * A step of a call, for a node's status (the node words it): `listed` (with the count so far),
 * `looking-up`, `creating`, `raced` (created meanwhile by someone else; looking up again),
 * `updating`.
 */
export type Step = 'listed' | 'looking-up' | 'creating' | 'raced' | 'updating';

export interface CallOptions {
  signal?: AbortSignal;
  onWait?: OnWait;
  /** Told about each step, for a node's status. */
  onStep?: (step: Step, info?: { count: number }) => void;
}

/** Turns what the user typed as the bioAF URL into the Integration API base. */
export function apiBaseFromUrl(input: string): string {
  const raw = (input || '').trim();
  if (!raw) throw badInput('bioaf.urlMissing');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badInput('bioaf.urlInvalid', { url: raw });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw badInput('bioaf.urlScheme', { url: raw });
  if (url.search || url.hash) throw badInput('bioaf.urlQuery', { url: raw });
  const p = url.pathname.replace(/\/+$/, '');
  return `${url.origin}${/\/integrations$/.test(p) ? p : p + API_PATH}`;
}

/** bioAF's own `detail` texts and codes that get a hint (`bioaf.apiDetail.*`). */
const HINTS: Record<string, string> = {
  'Missing or invalid authorization header': 'checkKey',
  'Invalid API key': 'invalidKey',
  invalid_api_key: 'checkKey',
  'Service account inactive': 'accountInactive',
  'API key required': 'keyRequired',
  role_missing: 'roleMissing',
  key_scope_missing: 'scopeMissing',
  idempotency_key_reused_with_different_body: 'idempotencyKeyReused',
  status_writes_not_permitted: 'statusWrites',
  qc_writes_not_permitted: 'qcWrites',
};

/**
 * bioAF's `{"detail": "..."}` or Pydantic's `{"detail": [{loc, msg, type}]}` as one readable line,
 * with a note (in the reader's language) on what a known refusal means.
 */
export function describeBioafError(status: number, body: unknown): ApiErrorDescription | undefined {
  const detail = (body as { detail?: unknown })?.detail;
  if (typeof detail === 'string') {
    const hint = HINTS[detail];
    return { message: detail, notes: hint ? [messageRef(`bioaf.apiDetail.${hint}` as MessageKey)] : [], apiError: body as Record<string, unknown> };
  }
  if (Array.isArray(detail)) {
    const parts = detail.slice(0, 5).map((d: { loc?: unknown[]; msg?: string }) => {
      const loc = Array.isArray(d?.loc) ? d.loc.filter((x) => x !== 'body').join('.') : '';
      return `${loc ? loc + ': ' : ''}${d?.msg ?? errorText('bioaf.apiDetail.invalid')}`;
    });
    return { message: errorText('bioaf.apiDetail.validationFailed', { problems: parts.join('; ') }), apiError: body as Record<string, unknown> };
  }
  return undefined;
}

/** The `detail` code of a bioAF error, if it has one. */
export function errorDetail(err: unknown): string | undefined {
  const d = err instanceof LabError ? (err.apiError as { detail?: unknown } | undefined)?.detail : undefined;
  return typeof d === 'string' ? d : undefined;
}

function isNotFound(err: unknown): boolean {
  return err instanceof LabError && err.status === 404;
}

/**
 * The Idempotency-Key of a create, derived from everything that makes the request what it is,
 * so the same create always carries the same key — across retries, redeploys and crashes — and
 * a different create never reuses one (bioAF would answer 422).
 */
export function idempotencyKey(resource: Resource, body: Record<string, unknown>): string {
  return 'labwire-' + createHash('sha256').update(`${resource}\n${canonicalJson(body)}`).digest('hex').slice(0, 40);
}

export class BioafClient {
  readonly http: HttpClient;
  readonly apiBase: string;

  constructor(o: BioafClientOptions) {
    this.apiBase = apiBaseFromUrl(o.url);
    const key = (o.apiKey || '').trim().replace(/^Bearer\s+/, '');
    if (!key) throw badInput('bioaf.keyMissing');
    registerSecret(key);
    // bioAF mints biokey_<12 chars>.<32 chars>; checked loosely (its own docs get the format wrong).
    if (!/^biokey_[^.\s]+\.\S+$/.test(key)) throw badInput('bioaf.keyFormat');
    const authorization = `Bearer ${key}`;
    this.http = new HttpClient({
      service: 'bioAF',
      baseUrl: this.apiBase,
      auth: () => ({ Authorization: authorization }),
      timeoutMs: o.timeoutMs,
      retries: o.retries,
      backoff: o.backoff,
      network: o.network,
      describeApiError: describeBioafError,
    });
  }

  async get(resource: Resource, id: number, o: CallOptions = {}): Promise<BioafRecord> {
    const res = await this.http.request<BioafRecord>({ method: 'GET', path: `${collection(resource)}/${id}`, signal: o.signal, onWait: o.onWait });
    requireField(res.data, `bioAF GET ${collection(resource)}/${id}`, 'id', 'number');
    return res.data;
  }

  /** The record with this external id (samples: within the experiment), or undefined. */
  async findByExternal(resource: Resource, externalId: string, experimentId?: number, o: CallOptions = {}): Promise<BioafRecord | undefined> {
    checkExternalId(externalId);
    if (resource === 'sample' && experimentId === undefined) throw badInput('bioaf.sampleLookupNeedsExperiment');
    // The by-external route takes a plain path segment: an id with "/" cannot reach it, even
    // encoded. The list filter (exact match) finds those.
    if (externalId.includes('/')) {
      const page = await this.list(resource, { external_id: externalId, experiment_id: experimentId }, { limit: 2, signal: o.signal, onWait: o.onWait });
      return page.items.find((r) => r.external_id === externalId);
    }
    try {
      const res = await this.http.request<BioafRecord>({
        method: 'GET',
        path: `${collection(resource)}/by-external/${encodeURIComponent(externalId)}`,
        query: resource === 'sample' ? { experiment_id: experimentId } : undefined,
        signal: o.signal,
        onWait: o.onWait,
      });
      requireField(res.data, `bioAF GET ${collection(resource)}/by-external/${externalId}`, 'id', 'number');
      return res.data;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** One page, newest first. `cursor` is the `next_cursor` of the previous page. */
  async list(
    resource: Resource,
    filters: Record<string, string | number | boolean | undefined> = {},
    o: CallOptions & { cursor?: string | null; limit?: number } = {},
  ): Promise<Page> {
    const limit = o.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw badInput('bioaf.pageSize', { limit: String(limit) });
    const res = await this.http.request<Page>({
      method: 'GET',
      path: collection(resource),
      query: { ...filters, limit, cursor: o.cursor ?? undefined },
      signal: o.signal,
      onWait: o.onWait,
    });
    if (!Array.isArray(res.data?.items)) throw new LabError('BAD_RESPONSE', 'bioaf.noItems', { path: collection(resource) });
    return { items: res.data.items, next_cursor: res.data.next_cursor ?? null };
  }

  /** Every page, following `next_cursor`, up to `max` records. */
  async listAll(
    resource: Resource,
    filters: Record<string, string | number | boolean | undefined> = {},
    o: CallOptions & { limit?: number; max?: number } = {},
  ): Promise<{ items: BioafRecord[]; pages: number; truncated: boolean }> {
    const max = o.max ?? 10_000;
    const items: BioafRecord[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: Page = await this.list(resource, filters, { ...o, cursor, limit: o.limit ?? 200 });
      pages++;
      items.push(...page.items);
      cursor = page.next_cursor;
      o.onStep?.('listed', { count: items.length });
    } while (cursor && items.length < max);
    return { items: items.slice(0, max), pages, truncated: !!cursor || items.length > max };
  }

  async create(resource: Resource, body: Record<string, unknown>, key: string, o: CallOptions = {}): Promise<{ record: BioafRecord; replayed: boolean }> {
    const res = await this.http.request<BioafRecord>({
      method: 'POST',
      path: collection(resource),
      json: body,
      headers: { 'Idempotency-Key': key },
      // With an Idempotency-Key a repeated create is answered from bioAF's cache, so timeouts
      // and 5xx may be retried like a GET.
      idempotent: true,
      signal: o.signal,
      onWait: o.onWait,
    });
    requireField(res.data, `bioAF POST ${collection(resource)}`, 'id', 'number');
    return { record: res.data, replayed: String(res.headers['idempotency-replayed']).toLowerCase() === 'true' };
  }

  async patch(resource: Resource, id: number, body: Record<string, unknown>, o: CallOptions = {}): Promise<BioafRecord> {
    const res = await this.http.request<BioafRecord>({
      method: 'PATCH',
      path: `${collection(resource)}/${id}`,
      json: body,
      // PATCH sets fields (custom fields by name), so sending it twice gives the same record.
      idempotent: true,
      signal: o.signal,
      onWait: o.onWait,
    });
    requireField(res.data, `bioAF PATCH ${collection(resource)}/${id}`, 'id', 'number');
    return res.data;
  }

  /** A sample's experiment id: given, or looked up by the experiment's external id. */
  async resolveExperimentId(plan: { experimentId?: number; experimentExternalId?: string }, o: CallOptions = {}): Promise<number> {
    if (plan.experimentId !== undefined) return plan.experimentId;
    const ext = plan.experimentExternalId!;
    const exp = await this.findByExternal('experiment', ext, undefined, o);
    if (!exp) throw new LabError('HTTP', 'bioaf.noExperiment', { id: ext }, { status: 404 });
    return exp.id;
  }

  /** Creates or updates the record with this external id so it holds `payload`'s fields. */
  async upsert(resource: Resource, externalId: string, payload: unknown, o: CallOptions = {}): Promise<UpsertResult> {
    const plan = planWrite(resource, externalId, payload);
    const experimentId = resource === 'sample' ? await this.resolveExperimentId(plan, o) : undefined;
    o.onStep?.('looking-up');
    let existing = await this.findByExternal(resource, externalId, experimentId, o);
    let raced = false;
    if (!existing) {
      const body = createBody(plan, experimentId);
      const key = idempotencyKey(resource, body);
      o.onStep?.('creating');
      try {
        const { record, replayed } = await this.create(resource, body, key, o);
        if (!replayed) return { record, action: 'created', changed: [], idempotencyKey: key };
        // A replay is bioAF's answer from up to 24 h ago: read the record as it is now. Should it
        // be gone (deleted outside the API meanwhile), create it afresh under a new key.
        try {
          return { record: await this.get(resource, record.id, o), action: 'created', changed: [], replayed, idempotencyKey: key };
        } catch (err) {
          if (!isNotFound(err)) throw err;
          const fresh = `${key}-${Date.now().toString(36)}`;
          const again = await this.create(resource, body, fresh, o);
          return { record: again.record, action: 'created', changed: [], idempotencyKey: fresh };
        }
      } catch (err) {
        if (errorDetail(err) !== 'external_id_already_exists') throw err;
        // Someone else created it between our lookup and our create: update theirs instead.
        raced = true;
        o.onStep?.('raced');
        existing = await this.findByExternal(resource, externalId, experimentId, o);
        if (!existing) throw err;
      }
    }
    const result = await this.update(plan, existing, o);
    return raced ? { ...result, raced } : result;
  }

  private async update(plan: WritePlan, existing: BioafRecord, o: CallOptions): Promise<UpsertResult> {
    let projectId: number | undefined;
    if (plan.resource === 'experiment' && typeof plan.fields.project_external_id === 'string') {
      const project = await this.findByExternal('project', plan.fields.project_external_id, undefined, o);
      projectId = project ? project.id : -1; // no such project: certainly not the one it is in
    }
    const { patch, changed } = diffRecord(plan, existing, projectId);
    if (changed.length === 0) return { record: existing, action: 'unchanged', changed };
    o.onStep?.('updating');
    const record = await this.patch(plan.resource, existing.id, patch, o);
    return { record, action: 'updated', changed };
  }

  close(): void {
    this.http.close();
  }
}
