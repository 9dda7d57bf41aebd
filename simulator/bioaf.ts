// bioAF simulator: a real HTTP server (node:http) answering bioAF's Integration API
// (/api/v1/integrations) the way its CODE behaves (shared/reference/bioaf-genie-api.md §1; where
// the docs disagree, the code wins), and sending bioAF's outbound webhooks (§1.7).
//
// Integration API: projects, experiments, samples (strict POST: 409 external_id_already_exists;
// by-external lookups, samples within their experiment; PATCH writes only non-null fields,
// custom_fields delta-applied; status / qc_status refused with 400 for experiments and samples,
// silently ignored for projects; unknown fields silently ignored, like Pydantic), Idempotency-Key
// on POST only (fingerprint over METHOD, PATH and the canonical parsed body; a replay answers the
// original 201 with `Idempotency-Replayed: true`; another body → 422; only successes cached,
// 24 h), cursor paging (newest first, `id < cursor`, limit 1–200), bearer-key auth with bioAF's
// exact 401 / 403 bodies. Files are read-only and empty unless added with addFile().
//
// Webhooks: subscriptions (admin-side in bioAF; here test controls), one delivery row per event
// and subscription, signed at every attempt with a fresh `t`, body = Python's
// json.dumps(sort_keys=True) bytes, at least once with bioAF's retry schedule (60 s, 300 s,
// 1800 s, 7200 s; the fifth failure dead-letters) scaled by `retryScale` for tests, admin replay
// (a new delivery row with the same envelope), and tamper hooks to produce bad deliveries.
import { listen, portOf, shutdown } from './http-server';
import * as http from 'node:http';
import * as crypto from 'node:crypto';

export const BIOAF_API_PATH = '/api/v1/integrations';
/** 12-character prefix, 32-character secret: the format bioAF mints. Obviously fake. */
// The simulator's public demo key: bioAF's format, a deliberately short secret part.
export const DEFAULT_BIOAF_API_KEY = 'biokey_SIMdemoKEY01.notasecret00';
/** bioAF's BACKOFF_SECONDS; with MAX_ATTEMPTS 5 the last entry is never used (as in its code). */
export const BIOAF_BACKOFF_SECONDS = [60, 300, 1800, 7200, 43200];
export const BIOAF_MAX_ATTEMPTS = 5;
export const BIOAF_EVENTS = [
  'experiment.created',
  'experiment.updated',
  'experiment.status_changed',
  'sample.created',
  'sample.updated',
  'sample.qc_changed',
  'file.registered',
  'file.ready',
  'webhook.test',
];

type Res = 'project' | 'experiment' | 'sample';

export interface BioafKeyOptions {
  key: string;
  /** Default: every public scope. */
  scopes?: string[];
  /** The service account is disabled → 401 "Service account inactive". */
  inactive?: boolean;
}

export interface BioafSimOptions {
  /** 0 (default) = random free port. */
  port?: number;
  host?: string;
  /** Valid keys. Default [DEFAULT_BIOAF_API_KEY] with every scope. */
  apiKeys?: Array<string | BioafKeyOptions>;
  organizationId?: number;
  /** Prefix of generated codes (`<prefix>p-0001`). Default 'bio'. */
  codePrefix?: string;
  /** Multiplies the webhook retry schedule (1 = bioAF's real 60 s, 300 s, …). Default 1. */
  retryScale?: number;
  /** HTTP timeout of a webhook delivery attempt. Default 10 s (bioAF's). */
  deliveryTimeoutMs?: number;
  /** Lifetime of Idempotency-Key entries. Default 24 h. */
  idempotencyTtlMs?: number;
}

export interface BioafFault {
  /** Status to answer (500, 503, 429 …) or 'reset' (destroy the socket). */
  kind: number | 'reset';
  method?: string;
  path?: RegExp;
  times?: number;
  /**
   * Handle the request fully (a create is committed and cached) and only then answer with the
   * fault — the answer that a crash or a proxy loses after the server acted.
   */
  afterCommit?: boolean;
}

export interface BioafLogEntry {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  body?: unknown;
  idempotencyKey?: string;
  replayed?: boolean;
  fault?: string;
  time: number;
}

export interface BioafSubscription {
  id: number;
  url: string;
  /** Event names, or ['*'] for all. */
  events: string[];
  secret: string;
  active: boolean;
  /** Seconds added to `t` when signing (test control: stale / future timestamps). */
  clockSkewSec: number;
  /** Test control: change what is sent, after signing (tampered body, missing header …). */
  tamper?: (d: OutgoingDelivery) => OutgoingDelivery | void;
}

export interface OutgoingDelivery {
  headers: Record<string, string>;
  body: Buffer;
}

export interface DeliveryAttempt {
  at: number;
  /** 0 when no HTTP answer (network error, timeout). */
  status: number;
  error?: string;
  /** Receiver's answer, truncated to 4 KB as bioAF stores it. */
  responseBody: string;
  signature?: string;
}

export interface BioafDelivery {
  id: number;
  subscriptionId: number;
  event: string;
  eventId: string;
  /** The exact bytes sent. */
  body: Buffer;
  state: 'pending' | 'delivered' | 'dead';
  attempts: DeliveryAttempt[];
  nextAttemptAt?: number;
  /** Set on an admin replay: the delivery this one clones. */
  replayOf?: number;
}

interface StoredRecord {
  id: number;
  org: number;
  data: Record<string, unknown>;
}

interface IdemEntry {
  fingerprint: string;
  status: number;
  body: unknown;
  expiresAt: number;
}

class HttpFail {
  constructor(
    readonly status: number,
    readonly detail: unknown,
  ) {}
}

const ALL_SCOPES = ['projects:view', 'projects:create', 'projects:edit', 'experiments:view', 'experiments:create', 'experiments:edit', 'samples:view', 'samples:create', 'samples:edit', 'files:view'];

// Pydantic model fields (the canonical dump includes every field, null when omitted).
const CREATE_MODEL: Record<Res, string[]> = {
  project: ['external_id', 'name', 'description', 'hypothesis', 'custom_fields'],
  experiment: ['external_id', 'name', 'project_id', 'project_external_id', 'hypothesis', 'description', 'expected_sample_count', 'variables_json', 'custom_fields', 'status'],
  sample: [
    'external_id',
    'experiment_id',
    'organism',
    'tissue_type',
    'donor_source',
    'treatment_condition',
    'chemistry_version',
    'prep_notes',
    'molecule_type',
    'library_prep_method',
    'cell_count',
    'assay',
    'custom_fields',
    'status',
    'qc_status',
  ],
};
const PATCH_MODEL: Record<Res, string[]> = {
  project: ['name', 'description', 'hypothesis', 'custom_fields'],
  experiment: ['name', 'hypothesis', 'description', 'expected_sample_count', 'variables_json', 'custom_fields', 'status'],
  sample: CREATE_MODEL.sample.filter((f) => f !== 'external_id' && f !== 'experiment_id'),
};
const INT_FIELDS = new Set(['project_id', 'experiment_id', 'expected_sample_count', 'cell_count']);
const NAME_FIELDS = new Set(['name', 'external_id']);
const STR255 = new Set(['project_external_id']);

// ----------------------------------------------------------------------------------------------
// Python-compatible JSON (json.dumps(x, sort_keys=True): ", " and ": " separators, ASCII only)
// ----------------------------------------------------------------------------------------------

export function pythonJsonDumps(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (v === true) return 'true';
  if (v === false) return 'false';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null';
  if (typeof v === 'string') return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
  if (Array.isArray(v)) return `[${v.map(pythonJsonDumps).join(', ')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${pythonJsonDumps(k)}: ${pythonJsonDumps(o[k])}`)
    .join(', ')}}`;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

/** `2026-05-14T15:00:00.123000+00:00`, like Python's datetime.isoformat() in UTC. */
function isoPython(ms = Date.now()): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');
}

export class BioafSim {
  url = '';
  apiBase = '';
  readonly requestLog: BioafLogEntry[] = [];
  readonly counters = { requests: 0, byStatus: {} as Record<string, number>, deliveryAttempts: 0 };

  private readonly server: http.Server;
  private readonly opts: Required<Omit<BioafSimOptions, 'apiKeys' | 'host' | 'port'>> & { host: string; port: number };
  private readonly keys = new Map<string, BioafKeyOptions & { revoked?: boolean }>();
  private readonly tables: Record<Res, Map<number, StoredRecord>> = { project: new Map(), experiment: new Map(), sample: new Map() };
  private readonly nextId: Record<Res, number> = { project: 1, experiment: 1, sample: 1 };
  private readonly files = new Map<number, Record<string, unknown>>();
  private readonly idem = new Map<string, IdemEntry>();
  private faults: Array<BioafFault & { remaining: number }> = [];
  private hooks: Array<{ method: string; path: RegExp; fn: () => void | Promise<void> }> = [];
  private readonly subs = new Map<number, BioafSubscription>();
  private readonly deliveryRows = new Map<number, BioafDelivery>();
  private nextSubId = 1;
  private nextDeliveryId = 1000;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly outgoing = new Set<http.ClientRequest>();
  private readonly agent = new http.Agent({ keepAlive: false });
  private closed = false;

  constructor(options: BioafSimOptions = {}) {
    this.opts = {
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      organizationId: options.organizationId ?? 1,
      codePrefix: options.codePrefix ?? 'bio',
      retryScale: options.retryScale ?? 1,
      deliveryTimeoutMs: options.deliveryTimeoutMs ?? 10_000,
      idempotencyTtlMs: options.idempotencyTtlMs ?? 24 * 3600_000,
    };
    for (const k of options.apiKeys ?? [DEFAULT_BIOAF_API_KEY]) {
      const o = typeof k === 'string' ? { key: k } : k;
      this.keys.set(o.key, { ...o });
    }
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        if (!res.headersSent && !res.destroyed) this.send(res, 500, { detail: `simulator error: ${String(err?.message)}` });
      });
    });
    this.server.keepAliveTimeout = 5000;
  }

  // --------------------------------------------------------------------------- lifecycle

  async start(): Promise<this> {
    this.url = await listen(this.server, this.opts.host, this.opts.port);
    this.apiBase = this.url + BIOAF_API_PATH;
    return this;
  }

  get port(): number {
    return portOf(this.server);
  }

  /** Stops the server and the webhook worker, destroying open sockets. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const r of this.outgoing) r.destroy();
    this.agent.destroy();
    await shutdown(this.server);
  }

  // --------------------------------------------------------------------------- test controls

  /** Answer the next matching request(s) with a fault. */
  injectFault(f: BioafFault): void {
    this.faults.push({ ...f, remaining: f.times ?? 1 });
  }

  clearFaults(): void {
    this.faults = [];
    this.hooks = [];
  }

  /** Run `fn` once just before the next matching request is handled (e.g. another writer). */
  beforeNext(method: string, path: RegExp, fn: () => void | Promise<void>): void {
    this.hooks.push({ method: method.toUpperCase(), path, fn });
  }

  addApiKey(k: string | BioafKeyOptions): void {
    const o = typeof k === 'string' ? { key: k } : k;
    this.keys.set(o.key, { ...o });
  }

  revokeApiKey(key: string): void {
    const k = this.keys.get(key);
    if (k) k.revoked = true;
  }

  /** Stores a record directly, as another writer would (no HTTP, no events). */
  putRecord(resource: Res, fields: Record<string, unknown>): Record<string, unknown> {
    return this.insert(resource, fields);
  }

  /** Removes a record as bioAF's UI could (the Integration API has no DELETE). */
  removeRecord(resource: Res, id: number): boolean {
    return this.tables[resource].delete(id);
  }

  getRecord(resource: Res, id: number): Record<string, unknown> | undefined {
    const r = this.tables[resource].get(id);
    return r ? this.out(resource, r) : undefined;
  }

  records(resource: Res): Array<Record<string, unknown>> {
    return [...this.tables[resource].values()].map((r) => this.out(resource, r));
  }

  addFile(file: Record<string, unknown>): Record<string, unknown> {
    const id = this.files.size + 1;
    const f = { id, filename: `file-${id}.fastq.gz`, size_bytes: 0, md5_checksum: null, sha256_checksum: null, file_type: 'fastq', source_type: 'upload', project_id: null, experiment_id: null, sample_ids: [], tags: [], created_at: isoPython(), ...file };
    this.files.set(id, f);
    return f;
  }

  clearRequestLog(): void {
    this.requestLog.length = 0;
  }

  // --------------------------------------------------------------------------- webhooks: controls

  /** Adds a subscription (bioAF: admin UI). The secret is `whsec_` + 43 URL-safe characters. */
  addSubscription(o: { url: string; events?: string[]; secret?: string; clockSkewSec?: number; tamper?: BioafSubscription['tamper'] }): BioafSubscription {
    const sub: BioafSubscription = {
      id: this.nextSubId++,
      url: o.url,
      events: o.events ?? ['*'],
      secret: o.secret ?? newWebhookSecret(),
      active: true,
      clockSkewSec: o.clockSkewSec ?? 0,
      tamper: o.tamper,
    };
    this.subs.set(sub.id, sub);
    return sub;
  }

  /** Changes a subscription (e.g. its tamper hook, clock skew, or signing secret). */
  updateSubscription(id: number, patch: Partial<Omit<BioafSubscription, 'id'>>): BioafSubscription {
    const sub = this.subs.get(id);
    if (!sub) throw new Error(`no subscription ${id}`);
    Object.assign(sub, patch);
    return sub;
  }

  /** Rotates the signing secret: a hard cut-over, every later attempt is signed with the new one. */
  rotateSecret(id: number): string {
    return this.updateSubscription(id, { secret: newWebhookSecret() }).secret;
  }

  subscriptions(): BioafSubscription[] {
    return [...this.subs.values()];
  }

  /**
   * Fires an event to every matching subscription (one delivery row each), as bioAF's
   * dispatcher does. Integration-API creates and updates call this on their own.
   */
  emitEvent(event: string, data: Record<string, unknown>): { eventId: string; deliveries: number[] } {
    const envelope = {
      id: 'evt_' + crypto.randomUUID().replace(/-/g, '').slice(0, 24),
      event,
      occurred_at: isoPython(),
      organization_id: this.opts.organizationId,
      data,
    };
    const body = Buffer.from(pythonJsonDumps(envelope), 'utf8');
    const ids: number[] = [];
    for (const sub of this.subs.values()) {
      if (!sub.active || !(sub.events.includes('*') || sub.events.includes(event))) continue;
      const d: BioafDelivery = { id: this.nextDeliveryId++, subscriptionId: sub.id, event, eventId: envelope.id, body, state: 'pending', attempts: [] };
      this.deliveryRows.set(d.id, d);
      ids.push(d.id);
      this.schedule(d, 0);
    }
    return { eventId: envelope.id, deliveries: ids };
  }

  /** Admin replay: a new delivery row (new delivery id) with the same envelope bytes. */
  replayDelivery(id: number): number {
    const src = this.deliveryRows.get(id);
    if (!src) throw new Error(`no delivery ${id}`);
    const d: BioafDelivery = { id: this.nextDeliveryId++, subscriptionId: src.subscriptionId, event: src.event, eventId: src.eventId, body: src.body, state: 'pending', attempts: [], replayOf: src.id };
    this.deliveryRows.set(d.id, d);
    this.schedule(d, 0);
    return d.id;
  }

  /**
   * One more attempt of the same delivery row (same delivery id), as the worker makes when an
   * earlier answer was lost (receiver too slow, connection dropped after it acted).
   */
  redeliver(id: number): Promise<DeliveryAttempt> {
    const d = this.deliveryRows.get(id);
    if (!d) throw new Error(`no delivery ${id}`);
    return this.attempt(d, { reschedule: false });
  }

  deliveries(): BioafDelivery[] {
    return [...this.deliveryRows.values()];
  }

  delivery(id: number): BioafDelivery | undefined {
    return this.deliveryRows.get(id);
  }

  /** Resolves when `pred` holds for delivery `id` (polling), rejects after `ms`. */
  async waitForDelivery(id: number, pred: (d: BioafDelivery) => boolean = (d) => d.state !== 'pending', ms = 10_000): Promise<BioafDelivery> {
    const until = Date.now() + ms;
    for (;;) {
      const d = this.deliveryRows.get(id);
      if (d && pred(d)) return d;
      if (Date.now() > until) throw new Error(`delivery ${id} did not reach the expected state within ${ms} ms (${d?.state}, ${d?.attempts.length} attempts)`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  // --------------------------------------------------------------------------- webhooks: worker

  private schedule(d: BioafDelivery, delayMs: number): void {
    if (this.closed) return;
    d.nextAttemptAt = Date.now() + delayMs;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.attempt(d, { reschedule: true }).catch(() => undefined);
    }, delayMs);
    this.timers.add(timer);
  }

  private attempt(d: BioafDelivery, o: { reschedule: boolean }): Promise<DeliveryAttempt> {
    const sub = this.subs.get(d.subscriptionId)!;
    const t = Math.floor(Date.now() / 1000) + sub.clockSkewSec;
    const signature = `t=${t},v1=${crypto.createHmac('sha256', Buffer.from(sub.secret, 'utf8')).update(Buffer.concat([Buffer.from(`${t}.`), d.body])).digest('hex')}`;
    let out: OutgoingDelivery = {
      headers: { 'Content-Type': 'application/json', 'X-bioAF-Event': d.event, 'X-bioAF-Delivery': String(d.id), 'X-bioAF-Signature': signature },
      body: d.body,
    };
    if (sub.tamper) {
      const copy = { headers: { ...out.headers }, body: out.body };
      out = sub.tamper(copy) ?? copy;
    }
    this.counters.deliveryAttempts++;
    return new Promise<DeliveryAttempt>((resolve) => {
      const at = Date.now();
      let settled = false;
      const finish = (status: number, responseBody: string, error?: string) => {
        if (settled) return;
        settled = true;
        const a: DeliveryAttempt = { at, status, responseBody: responseBody.slice(0, 4096), signature, ...(error ? { error } : {}) };
        d.attempts.push(a);
        d.nextAttemptAt = undefined;
        if (status >= 200 && status < 300) d.state = 'delivered';
        else if (o.reschedule) {
          if (d.attempts.length >= BIOAF_MAX_ATTEMPTS) d.state = 'dead';
          else this.schedule(d, BIOAF_BACKOFF_SECONDS[d.attempts.length - 1] * 1000 * this.opts.retryScale);
        }
        resolve(a);
      };
      if (this.closed) return finish(0, '', 'simulator closed');
      let req: http.ClientRequest;
      try {
        req = http.request(sub.url, { method: 'POST', headers: { ...out.headers, 'Content-Length': String(out.body.length) }, agent: this.agent, timeout: this.opts.deliveryTimeoutMs });
      } catch (err) {
        return finish(0, '', String((err as Error).message));
      }
      this.outgoing.add(req);
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (text.length < 8192) text += c;
        });
        res.on('end', () => {
          this.outgoing.delete(req);
          finish(res.statusCode ?? 0, text);
        });
        res.on('error', () => undefined);
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => {
        this.outgoing.delete(req);
        finish(0, '', err.message);
      });
      req.end(out.body);
    });
  }

  // --------------------------------------------------------------------------- HTTP handling

  private send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  private async readBody(req: http.IncomingMessage): Promise<string> {
    let text = '';
    for await (const chunk of req) {
      text += chunk.toString();
      if (text.length > 2 * 1024 * 1024) throw new HttpFail(413, 'request_too_large');
    }
    return text;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = (req.method ?? 'GET').toUpperCase();
    const query = Object.fromEntries(url.searchParams.entries());
    // ASGI routes on the percent-decoded path: an encoded "/" splits the segment.
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      path = url.pathname;
    }
    const entry: BioafLogEntry = { method, path, query, status: 0, time: Date.now() };
    const idemKey = req.headers['idempotency-key'];
    if (typeof idemKey === 'string') entry.idempotencyKey = idemKey;
    this.requestLog.push(entry);
    this.counters.requests++;
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      entry.status = status;
      this.counters.byStatus[status] = (this.counters.byStatus[status] ?? 0) + 1;
      this.send(res, status, body, headers);
    };

    const fault = this.takeFault(method, path);
    if (fault && !fault.afterCommit) {
      entry.fault = String(fault.kind);
      if (fault.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      return answer(fault.kind, fault.kind === 429 ? { detail: 'Rate limit exceeded' } : { detail: 'Internal Server Error' }, fault.kind === 429 ? { 'Retry-After': '0' } : {});
    }
    for (const h of [...this.hooks]) {
      if (h.method === method && h.path.test(path)) {
        this.hooks.splice(this.hooks.indexOf(h), 1);
        await h.fn();
      }
    }

    let status: number;
    let body: unknown;
    let headers: Record<string, string> = {};
    try {
      const raw = method === 'POST' || method === 'PATCH' ? await this.readBody(req) : '';
      ({ status, body, headers = {} } = this.route(method, path, query, req.headers, raw, entry));
    } catch (err) {
      if (!(err instanceof HttpFail)) throw err;
      status = err.status;
      body = { detail: err.detail };
    }
    entry.body = body;
    if (fault?.afterCommit) {
      entry.fault = `${fault.kind} after commit`;
      if (fault.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      return answer(fault.kind, { detail: 'Internal Server Error' });
    }
    answer(status, body, headers);
  }

  private takeFault(method: string, path: string): BioafFault | undefined {
    const f = this.faults.find((x) => x.remaining > 0 && (!x.method || x.method.toUpperCase() === method) && (!x.path || x.path.test(path)));
    if (!f) return undefined;
    f.remaining--;
    this.faults = this.faults.filter((x) => x.remaining > 0);
    return f;
  }

  private route(
    method: string,
    path: string,
    query: Record<string, string>,
    headers: http.IncomingHttpHeaders,
    raw: string,
    entry: BioafLogEntry,
  ): { status: number; body: unknown; headers?: Record<string, string> } {
    if (!path.startsWith(BIOAF_API_PATH + '/') && path !== BIOAF_API_PATH) return { status: 404, body: { detail: 'Not Found' } };
    const rest = path.slice(BIOAF_API_PATH.length).replace(/\/$/, '');
    if (rest === '/openapi.json') return { status: 200, body: { openapi: '3.1.0', info: { title: 'bioAF Integration API (simulated)', version: 'v1' }, paths: {} } };
    const keyId = this.authenticate(headers);
    const seg = rest.split('/').filter(Boolean);
    const collections: Record<string, Res> = { projects: 'project', experiments: 'experiment', samples: 'sample' };
    if (seg[0] === 'files') {
      this.requireScope(keyId, 'files:view');
      if (method !== 'GET') return { status: 405, body: { detail: 'Method Not Allowed' } };
      if (seg.length === 1) return { status: 200, body: this.listFiles(query) };
      if (seg.length === 2 && /^\d+$/.test(seg[1])) {
        const f = this.files.get(Number(seg[1]));
        return f ? { status: 200, body: f } : { status: 404, body: { detail: 'file_not_found' } };
      }
      return { status: 404, body: { detail: 'Not Found' } };
    }
    const resource = collections[seg[0]];
    if (!resource) return { status: 404, body: { detail: 'Not Found' } };
    const plural = seg[0];
    if (seg.length === 1) {
      if (method === 'GET') {
        this.requireScope(keyId, `${plural}:view`);
        return { status: 200, body: this.list(resource, query) };
      }
      if (method === 'POST') {
        this.requireScope(keyId, `${plural}:create`);
        return this.create(resource, keyId, path, raw, headers['idempotency-key'] as string | undefined, entry);
      }
      return { status: 405, body: { detail: 'Method Not Allowed' } };
    }
    if (seg.length === 3 && seg[1] === 'by-external') {
      if (method !== 'GET') return { status: 405, body: { detail: 'Method Not Allowed' } };
      this.requireScope(keyId, `${plural}:view`);
      return { status: 200, body: this.byExternal(resource, seg[2], query) };
    }
    if (seg.length === 2) {
      if (!/^-?\d+$/.test(seg[1])) throw new HttpFail(422, [{ type: 'int_parsing', loc: ['path', `${resource}_id`], msg: 'Input should be a valid integer, unable to parse string as an integer', input: seg[1] }]);
      const id = Number(seg[1]);
      if (method === 'GET') {
        this.requireScope(keyId, `${plural}:view`);
        const r = this.tables[resource].get(id);
        if (!r) throw new HttpFail(404, `${resource}_not_found`);
        return { status: 200, body: this.out(resource, r) };
      }
      if (method === 'PATCH') {
        this.requireScope(keyId, `${plural}:edit`);
        return this.patch(resource, id, raw);
      }
      return { status: 405, body: { detail: 'Method Not Allowed' } };
    }
    return { status: 404, body: { detail: 'Not Found' } };
  }

  /** bioAF's auth middleware and dependencies, with their exact strings. Returns the key id. */
  private authenticate(headers: http.IncomingHttpHeaders): string {
    const auth = headers.authorization;
    if (typeof auth !== 'string' || !auth.startsWith('Bearer ')) throw new HttpFail(401, 'Missing or invalid authorization header');
    const token = auth.slice('Bearer '.length);
    if (!token.startsWith('biokey_')) throw new HttpFail(401, 'API key required');
    const m = /^biokey_([A-Za-z0-9]{12})\.([A-Za-z0-9]+)$/.exec(token);
    const k = this.keys.get(token);
    if (!m || !k || k.revoked) throw new HttpFail(401, 'Invalid API key');
    if (k.inactive) throw new HttpFail(401, 'Service account inactive');
    return m[1];
  }

  private requireScope(keyId: string, scope: string): void {
    const k = [...this.keys.values()].find((x) => x.key.startsWith(`biokey_${keyId}.`));
    if (!(k?.scopes ?? ALL_SCOPES).includes(scope)) throw new HttpFail(403, 'key_scope_missing');
  }

  // --------------------------------------------------------------------------- resources

  private visible(resource: Res): StoredRecord[] {
    return [...this.tables[resource].values()].filter((r) => r.org === this.opts.organizationId);
  }

  private findExternal(resource: Res, ext: string, experimentId?: number): StoredRecord | undefined {
    return this.visible(resource).find((r) => r.data.external_id === ext && (resource !== 'sample' || r.data.experiment_id === experimentId));
  }

  private byExternal(resource: Res, ext: string, query: Record<string, string>): unknown {
    let experimentId: number | undefined;
    if (resource === 'sample') {
      if (query.experiment_id === undefined) throw new HttpFail(422, [{ type: 'missing', loc: ['query', 'experiment_id'], msg: 'Field required', input: null }]);
      experimentId = this.queryInt(query, 'experiment_id');
    }
    const r = this.findExternal(resource, ext, experimentId);
    if (!r) throw new HttpFail(404, `${resource}_not_found`);
    return this.out(resource, r);
  }

  private queryInt(query: Record<string, string>, name: string): number | undefined {
    const v = query[name];
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v)) throw new HttpFail(422, [{ type: 'int_parsing', loc: ['query', name], msg: 'Input should be a valid integer, unable to parse string as an integer', input: v }]);
    return Number(v);
  }

  private page<T extends { id: number }>(rows: T[], query: Record<string, string>): { items: T[]; next_cursor: string | null } {
    const limit = query.limit === undefined ? 50 : this.queryInt(query, 'limit')!;
    if (limit < 1 || limit > 200) {
      throw new HttpFail(422, [{ type: limit < 1 ? 'greater_than_equal' : 'less_than_equal', loc: ['query', 'limit'], msg: `Input should be ${limit < 1 ? 'greater than or equal to 1' : 'less than or equal to 200'}`, input: query.limit }]);
    }
    let cursor: number | undefined;
    if (query.cursor !== undefined) {
      if (!/^-?\d+$/.test(query.cursor)) throw new HttpFail(400, 'invalid_cursor');
      cursor = Number(query.cursor);
    }
    const sorted = rows.filter((r) => cursor === undefined || r.id < cursor).sort((a, b) => b.id - a.id);
    const items = sorted.slice(0, limit);
    // bioAF fetches limit+1 rows and sets next_cursor only when more exist.
    return { items, next_cursor: sorted.length > limit ? String(items[items.length - 1].id) : null };
  }

  private list(resource: Res, query: Record<string, string>): unknown {
    const q = query.q?.toLowerCase();
    const like = (v: unknown) => typeof v === 'string' && v.toLowerCase().includes(q!);
    const num = (name: string) => this.queryInt(query, name);
    const projectId = num('project_id');
    const experimentId = num('experiment_id');
    const rows = this.visible(resource)
      .filter((r) => query.external_id === undefined || r.data.external_id === query.external_id)
      .filter((r) => query.status === undefined || resource === 'sample' || r.data.status === query.status)
      .filter((r) => projectId === undefined || resource !== 'experiment' || r.data.project_id === projectId)
      .filter((r) => experimentId === undefined || resource !== 'sample' || r.data.experiment_id === experimentId)
      .filter((r) => !q || (resource === 'sample' ? like(r.data.external_id) || like(r.data.organism) : like(r.data.name) || like(r.data.code)))
      .map((r) => this.out(resource, r) as Record<string, unknown> & { id: number });
    return this.page(rows, query);
  }

  private listFiles(query: Record<string, string>): unknown {
    const rows = [...this.files.values()]
      .filter((f) => ['project_id', 'experiment_id'].every((k) => query[k] === undefined || f[k] === Number(query[k])))
      .filter((f) => query.sample_id === undefined || (f.sample_ids as number[]).includes(Number(query.sample_id)))
      .filter((f) => query.source_type === undefined || f.source_type === query.source_type) as Array<Record<string, unknown> & { id: number }>;
    return this.page(rows, query);
  }

  private out(resource: Res, r: StoredRecord): Record<string, unknown> {
    return { id: r.id, ...structuredClone(r.data) };
  }

  private insert(resource: Res, fields: Record<string, unknown>): Record<string, unknown> {
    const id = this.nextId[resource]++;
    const now = isoPython();
    let data: Record<string, unknown>;
    const cf = ((fields.custom_fields as Array<{ field_name: string; field_value: string | null }>) ?? []).filter((c) => c.field_value !== null);
    const pick = (names: string[]) => Object.fromEntries(names.map((n) => [n, fields[n] ?? null]));
    if (resource === 'project') {
      data = { code: `${this.opts.codePrefix}p-${String(id).padStart(4, '0')}`, external_id: fields.external_id, ...pick(['name', 'description', 'hypothesis']), status: 'active', custom_fields: cf, created_at: now };
    } else if (resource === 'experiment') {
      data = {
        code: `${this.opts.codePrefix}e-${String(id).padStart(4, '0')}`,
        external_id: fields.external_id,
        project_id: fields.project_id ?? null,
        ...pick(['name', 'hypothesis', 'description', 'expected_sample_count', 'variables_json']),
        status: 'registered',
        custom_fields: cf,
        created_at: now,
      };
    } else {
      data = {
        external_id: fields.external_id,
        experiment_id: fields.experiment_id,
        ...pick(['organism', 'tissue_type', 'donor_source', 'treatment_condition', 'chemistry_version', 'prep_notes', 'molecule_type', 'library_prep_method', 'cell_count', 'assay']),
        status: 'registered',
        qc_status: null,
        custom_fields: cf,
        created_at: now,
      };
    }
    const rec = { id, org: this.opts.organizationId, data };
    this.tables[resource].set(id, rec);
    return this.out(resource, rec);
  }

  /** Pydantic's checks of a body against a model; extra fields are ignored (dropped). */
  private validate(resource: Res, raw: string, model: string[], required: string[]): Record<string, unknown> {
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      throw new HttpFail(422, [{ type: 'json_invalid', loc: ['body', 0], msg: 'JSON decode error', input: {} }]);
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      throw new HttpFail(422, [{ type: 'model_attributes_type', loc: ['body'], msg: 'Input should be a valid dictionary or object to extract fields from', input: body }]);
    }
    const b = body as Record<string, unknown>;
    const errors: unknown[] = [];
    const err = (type: string, name: string, msg: string) => errors.push({ type, loc: ['body', name], msg, input: b[name] ?? null });
    const parsed: Record<string, unknown> = {};
    for (const name of model) {
      const v = b[name];
      if (v === undefined || v === null) {
        if (required.includes(name)) err('missing', name, 'Field required');
        parsed[name] = null;
        continue;
      }
      parsed[name] = v;
      if (INT_FIELDS.has(name)) {
        if (typeof v !== 'number' || !Number.isInteger(v)) err('int_type', name, 'Input should be a valid integer');
      } else if (name === 'variables_json') {
        if (typeof v !== 'object' || Array.isArray(v)) err('dict_type', name, 'Input should be a valid dictionary');
      } else if (name === 'custom_fields') {
        if (!Array.isArray(v)) err('list_type', name, 'Input should be a valid list');
        else
          v.forEach((c: { field_name?: unknown; field_value?: unknown }, i: number) => {
            if (!c || typeof c.field_name !== 'string' || c.field_name.length < 1 || c.field_name.length > 255) errors.push({ type: 'string_type', loc: ['body', name, i, 'field_name'], msg: 'Input should be a valid string of 1-255 characters', input: c?.field_name ?? null });
            else if (c.field_value !== undefined && c.field_value !== null && typeof c.field_value !== 'string') errors.push({ type: 'string_type', loc: ['body', name, i, 'field_value'], msg: 'Input should be a valid string', input: c.field_value });
          });
      } else if (typeof v !== 'string') {
        if (name !== 'status' && name !== 'qc_status') err('string_type', name, 'Input should be a valid string');
      } else if (NAME_FIELDS.has(name) || STR255.has(name)) {
        if (v.length < 1) err('string_too_short', name, 'String should have at least 1 character');
        if (v.length > 255) err('string_too_long', name, 'String should have at most 255 characters');
      } else if (name === 'assay' && !['bulk_rna', 'scrna', 'other'].includes(v)) {
        err('literal_error', name, "Input should be 'bulk_rna', 'scrna' or 'other'");
      }
    }
    if (errors.length) throw new HttpFail(422, errors);
    if (Array.isArray(parsed.custom_fields)) parsed.custom_fields = (parsed.custom_fields as Array<Record<string, unknown>>).map((c) => ({ field_name: c.field_name, field_value: c.field_value ?? null }));
    return parsed;
  }

  private statusCheck(resource: Res, body: Record<string, unknown>): void {
    if (resource === 'sample' && body.qc_status !== null && body.qc_status !== undefined) throw new HttpFail(400, 'qc_writes_not_permitted');
    if (resource !== 'project' && body.status !== null && body.status !== undefined) throw new HttpFail(400, 'status_writes_not_permitted');
  }

  private create(resource: Res, keyId: string, path: string, raw: string, idemKey: string | undefined, entry: BioafLogEntry) {
    const body = this.validate(resource, raw, CREATE_MODEL[resource], resource === 'sample' ? ['external_id', 'experiment_id'] : ['external_id', 'name']);
    this.statusCheck(resource, body);
    let cacheKey: string | undefined;
    let fingerprint = '';
    if (idemKey !== undefined) {
      cacheKey = `${keyId}\n${idemKey}`;
      fingerprint = crypto.createHash('sha256').update(`POST\n${path}\n${canonical(body)}`).digest('hex');
      const hit = this.idem.get(cacheKey);
      if (hit && hit.expiresAt <= Date.now()) this.idem.delete(cacheKey);
      else if (hit) {
        if (hit.fingerprint !== fingerprint) throw new HttpFail(422, 'idempotency_key_reused_with_different_body');
        entry.replayed = true;
        return { status: hit.status, body: structuredClone(hit.body), headers: { 'Idempotency-Replayed': 'true' } };
      }
    }
    if (resource === 'experiment') {
      if (body.project_id !== null) {
        const p = this.tables.project.get(body.project_id as number);
        if (!p || p.org !== this.opts.organizationId) throw new HttpFail(404, 'project_not_found');
      } else if (body.project_external_id !== null) {
        const p = this.findExternal('project', body.project_external_id as string);
        if (!p) throw new HttpFail(404, 'project_not_found');
        body.project_id = p.id;
      }
    }
    if (resource === 'sample') {
      const e = this.tables.experiment.get(body.experiment_id as number);
      if (!e || e.org !== this.opts.organizationId) throw new HttpFail(404, 'experiment_not_found');
    }
    if (this.findExternal(resource, body.external_id as string, body.experiment_id as number | undefined)) throw new HttpFail(409, 'external_id_already_exists');
    const record = this.insert(resource, body);
    if (cacheKey) this.idem.set(cacheKey, { fingerprint, status: 201, body: structuredClone(record), expiresAt: Date.now() + this.opts.idempotencyTtlMs });
    if (resource === 'experiment') this.emitEvent('experiment.created', { experiment_id: record.id, external_id: record.external_id, project_id: record.project_id });
    if (resource === 'sample') this.emitEvent('sample.created', { sample_id: record.id, external_id: record.external_id, experiment_id: record.experiment_id });
    return { status: 201, body: record };
  }

  private patch(resource: Res, id: number, raw: string) {
    const body = this.validate(resource, raw, PATCH_MODEL[resource], []);
    this.statusCheck(resource, body);
    const r = this.tables[resource].get(id);
    if (!r || r.org !== this.opts.organizationId) throw new HttpFail(404, `${resource}_not_found`);
    const changed: string[] = [];
    for (const [name, v] of Object.entries(body)) {
      if (v === null || name === 'status' || name === 'qc_status') continue; // None is skipped: null never clears
      if (name === 'custom_fields') {
        const list = r.data.custom_fields as Array<{ field_name: string; field_value: string | null }>;
        for (const c of v as Array<{ field_name: string; field_value: string | null }>) {
          const i = list.findIndex((x) => x.field_name === c.field_name);
          if (c.field_value === null) {
            if (i >= 0) list.splice(i, 1);
          } else if (i >= 0) list[i].field_value = c.field_value;
          else list.push({ field_name: c.field_name, field_value: c.field_value });
        }
        if ((v as unknown[]).length) changed.push('custom_fields');
        continue;
      }
      r.data[name] = structuredClone(v);
      changed.push(name);
    }
    const record = this.out(resource, r);
    if (resource === 'experiment') this.emitEvent('experiment.updated', { experiment_id: id, external_id: record.external_id, changed_fields: changed });
    if (resource === 'sample') this.emitEvent('sample.updated', { sample_id: id, external_id: record.external_id, changed_fields: changed });
    return { status: 200, body: record };
  }
}

export function newWebhookSecret(): string {
  return 'whsec_' + crypto.randomBytes(32).toString('base64url');
}
