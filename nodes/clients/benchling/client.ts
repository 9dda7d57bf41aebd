/**
 * A typed Benchling API v2 client for the lab-automation workflow, usable without Node-RED.
 * All traffic goes through the shared HttpClient (retries, per-tenant governor, proxy, CA).
 */
import { createHash } from 'crypto';
import { HttpClient, HttpClientOptions, type ApiErrorDescription, type OnWait } from '../../lib/http/client';
import { badInput, LabError, registerSecret, requireField } from '../../lib/http/errors';
import { governorFor } from '../../lib/http/governor';
import { sharedBucketFor } from '../../lib/http/redis-bucket';
import { errorText, messageRef, type MessageRef } from '../../lib/messages';
import type { NetworkOptions } from '../../lib/http/network';
import { pollUntil, PollOptions } from '../../lib/poll';
import { stateFilePath } from '../../lib/journal';
import { uploadBuffer, uploadFile, UploadOptions, UploadResult } from './blob-upload';
import { TokenSource } from './oauth';
import * as fs from 'fs';
import { Readable } from 'stream';
import { pipeline } from 'stream/promises';
import type {
  AssayRun,
  AssayRunSchema,
  AutomationInputGenerator,
  Blob,
  BlobUrl,
  AsyncTask,
  AutomationOutputProcessor,
  AutomationOutputProcessorCreate,
  BenchlingApiError,
} from './types';

export interface BenchlingClientOptions {
  /** `https://<tenant>.benchling.com`, or a full API base such as `https://<tenant>.benchling.com/api/v2`. */
  tenantUrl: string;
  /** A user's API key (HTTP Basic, key as user name) … */
  apiKey?: string;
  /** … or a Benchling App's client credentials (OAuth2). */
  oauth?: { clientId: string; clientSecret: string };
  /** Requests per window for the tenant (Benchling's documented default: 60 per 30 s). */
  rateLimit?: { limit: number; windowMs: number };
  timeoutMs?: number;
  retries?: number;
  backoff?: { baseMs: number; maxMs: number };
  network?: NetworkOptions;
  /**
   * A folder (Node-RED's user directory) where the tenant's spent rate-limit window is kept, so a
   * restarted process does not burst into the window the server still counts. None: memory only.
   */
  stateDir?: string;
  /** Told once when that state cannot be written (the limit is then kept in memory). */
  onStateError?: (err: LabError) => void;
  /**
   * A Redis server holding the tenant's rate budget for every Node-RED (every lab PC) that uses
   * the tenant: `redis://host:6379` (password in `redisPassword`, or in the URL). None: each
   * process paces itself by the answers' rate headers.
   */
  redisUrl?: string;
  redisPassword?: string;
  /** Told when the shared budget cannot be used (requests are then paced by headers) and when it is back. */
  onSharedProblem?: (err: LabError | undefined) => void;
}

export const DEFAULT_RATE_LIMIT = { limit: 60, windowMs: 30_000 };

/** Turns what the user typed as the tenant URL into the API base (`…/api/v2`). */
export function apiBaseFromTenantUrl(input: string): string {
  const raw = (input || '').trim();
  if (!raw) throw badInput('benchling.tenantUrlMissing');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badInput('benchling.tenantUrlInvalid', { url: raw });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw badInput('benchling.tenantUrlNotHttps', { url: raw });
  }
  if (url.search || url.hash) throw badInput('benchling.tenantUrlQuery', { url: raw });
  const pathname = url.pathname.replace(/\/+$/, '');
  return `${url.origin}${pathname === '' ? '/api/v2' : pathname}`;
}

/** A caller-supplied API path, refused unless it stays below the API base (credentials go nowhere else). */
export function checkApiPath(p: string): string {
  if (!p.startsWith('/') || p.startsWith('//') || /:\/\//.test(p) || /(^|\/)\.\.(\/|$)/.test(p)) {
    throw badInput('benchling.badApiPath', { path: p });
  }
  return p.replace(/^\/api\/v2(?=\/)/, '');
}

/**
 * Benchling's `{"error": {type, message, userMessage, errorId, invalidId}}` as one readable line:
 * the server's own text, then the pack's notes (invalid id, error id, what to check) as message
 * ids, so each reader gets them in their language.
 */
export function describeBenchlingError(status: number, body: unknown): ApiErrorDescription | undefined {
  const e = (body as { error?: BenchlingApiError })?.error;
  if (!e || typeof e !== 'object') return undefined;
  const text = e.userMessage && e.userMessage !== e.message ? `${e.message ?? ''} — ${e.userMessage}`.replace(/^ — /, '') : e.message ?? e.userMessage ?? errorText('benchling.apiErrorNoMessage');
  const notes: MessageRef[] = [];
  if (e.invalidId) notes.push(messageRef('benchling.apiErrorInvalidId', { id: e.invalidId }));
  if (e.errorId) notes.push(messageRef('benchling.apiErrorId', { id: e.errorId }));
  if (status === 401) notes.push(messageRef('benchling.checkCredentials'));
  return { message: e.type ? `${text} (${e.type})` : text, notes, apiError: e as Record<string, unknown> };
}

export class BenchlingClient {
  readonly http: HttpClient;
  readonly apiBase: string;

  constructor(o: BenchlingClientOptions) {
    this.apiBase = apiBaseFromTenantUrl(o.tenantUrl);
    let auth: HttpClientOptions['auth'];
    let onUnauthorized: HttpClientOptions['onUnauthorized'];
    let identity: string;
    if (o.oauth) {
      if (!o.oauth.clientId || !o.oauth.clientSecret) throw badInput('benchling.appCredentialsMissing');
      const tokens = new TokenSource(() => this.http, `${this.apiBase}/token`, o.oauth.clientId, o.oauth.clientSecret);
      auth = async () => ({ Authorization: `Bearer ${await tokens.get()}` });
      // A token can be revoked or expire early: renew it once, then report the 401.
      onUnauthorized = async () => {
        tokens.invalidate();
        return true;
      };
      identity = `app ${o.oauth.clientId}`;
    } else {
      if (!o.apiKey) throw badInput('benchling.apiKeyMissing');
      registerSecret(o.apiKey);
      const authorization = `Basic ${Buffer.from(`${o.apiKey}:`).toString('base64')}`;
      auth = () => ({ Authorization: authorization });
      identity = `key ${o.apiKey}`;
    }
    const rate = o.rateLimit ?? DEFAULT_RATE_LIMIT;
    // Keyed by tenant and credential identity (hashed: never the key itself), so all nodes of a
    // tenant share one governor.
    const keyId = createHash('sha256').update(identity).digest('hex').slice(0, 12);
    const governorKey = `benchling ${this.apiBase} ${keyId}`;
    // The file is named by a hash of the governor key: neither the key nor the URL in a file name.
    const stateFile = o.stateDir
      ? stateFilePath(o.stateDir, 'rate-limit', `benchling-${createHash('sha256').update(governorKey).digest('hex').slice(0, 16)}`)
      : undefined;
    // The Redis budget is the tenant's (its URL), whatever credential each PC uses: the limit is per tenant.
    const shared = o.redisUrl
      ? sharedBucketFor({ url: o.redisUrl, password: o.redisPassword, key: `labwire:rate:benchling:${createHash('sha256').update(this.apiBase).digest('hex').slice(0, 16)}`, ...rate })
      : undefined;
    const opts: HttpClientOptions = {
      service: 'Benchling',
      baseUrl: this.apiBase,
      auth,
      onUnauthorized,
      governor: governorFor(governorKey, { ...rate, stateFile, onStateError: o.onStateError, shared, onSharedProblem: o.onSharedProblem }),
      timeoutMs: o.timeoutMs,
      retries: o.retries,
      backoff: o.backoff,
      network: o.network,
      describeApiError: describeBenchlingError,
    };
    this.http = new HttpClient(opts);
  }

  uploadFile(file: string, o?: UploadOptions): Promise<UploadResult> {
    return uploadFile(this.http, file, o);
  }

  uploadBuffer(bytes: Buffer, o: UploadOptions & { name: string }): Promise<UploadResult> {
    return uploadBuffer(this.http, bytes, o);
  }

  async createOutputProcessor(body: AutomationOutputProcessorCreate, signal?: AbortSignal, onWait?: OnWait): Promise<AutomationOutputProcessor> {
    const res = await this.http.request<AutomationOutputProcessor>({ method: 'POST', path: '/automation-output-processors', json: body, signal, onWait });
    return checkProcessor(res.data, 'Benchling POST /automation-output-processors');
  }

  async processOutput(processorId: string, signal?: AbortSignal, onWait?: OnWait): Promise<string> {
    const res = await this.http.request<{ taskId: string }>({
      method: 'POST',
      path: `/automation-output-processors/${encodeURIComponent(processorId)}:process-output`,
      signal,
      onWait,
    });
    if (!res.data?.taskId) throw new LabError('BAD_RESPONSE', 'benchling.processOutputNoTaskId', { processor: processorId });
    return res.data.taskId;
  }

  /**
   * The processor of a run's file config that holds `fileId`, if there is one. Used after a crash
   * between sending a create and recording its answer, so the processor is not created twice.
   */
  async findOutputProcessor(assayRunId: string, configName: string, fileId: string, signal?: AbortSignal): Promise<AutomationOutputProcessor | undefined> {
    const all = await this.allPages<AutomationOutputProcessor>(
      '/automation-output-processors',
      'automationOutputProcessors',
      { assayRunId, automationFileConfigName: configName },
      signal,
    );
    return all.find((p) => p.file?.id === fileId);
  }

  async getOutputProcessor(processorId: string, signal?: AbortSignal): Promise<AutomationOutputProcessor> {
    const res = await this.http.request<AutomationOutputProcessor>({
      method: 'GET',
      path: `/automation-output-processors/${encodeURIComponent(processorId)}`,
      signal,
    });
    return checkProcessor(res.data, `Benchling GET /automation-output-processors/${processorId}`);
  }

  async getTask<R = unknown>(taskId: string, signal?: AbortSignal, onWait?: OnWait): Promise<AsyncTask<R>> {
    const res = await this.http.request<AsyncTask<R>>({ method: 'GET', path: `/tasks/${encodeURIComponent(taskId)}`, signal, onWait });
    requireField(res.data, `Benchling GET /tasks/${taskId}`, 'status');
    const status = res.data?.status;
    if (status !== 'RUNNING' && status !== 'SUCCEEDED' && status !== 'FAILED') {
      throw new LabError('BAD_RESPONSE', 'benchling.unknownTaskStatus', { task: taskId, status: String(JSON.stringify(status)) });
    }
    return res.data;
  }

  /** Follows a task with the shared poller until SUCCEEDED or FAILED. */
  waitForTask<R = unknown>(taskId: string, o: Omit<PollOptions, 'what'> & { onWait?: OnWait }): Promise<AsyncTask<R>> {
    return pollUntil(
      () => this.getTask<R>(taskId, o.signal, o.onWait),
      (t) => t.status !== 'RUNNING',
      { ...o, what: messageRef('benchling.taskRef', { id: taskId }) },
    );
  }

  /**
   * Follows a processor with the shared poller until SUCCEEDED or FAILED: for processing started
   * by an attempt whose answer (the task id) was lost.
   */
  waitForProcessor(processorId: string, o: Omit<PollOptions, 'what'>): Promise<AutomationOutputProcessor> {
    return pollUntil(
      () => this.getOutputProcessor(processorId, o.signal),
      (p) => p.status === 'SUCCEEDED' || p.status === 'FAILED',
      { ...o, what: messageRef('benchling.processorRef', { id: processorId }) },
    );
  }

  /** All assay runs of a schema, following `nextToken` to the end. */
  listAssayRuns(schemaId: string, o: { signal?: AbortSignal; pageSize?: number; onWait?: OnWait } = {}): Promise<AssayRun[]> {
    return this.allPages<AssayRun>('/assay-runs', 'assayRuns', { schemaId, pageSize: o.pageSize ?? 100 }, o.signal, o.onWait);
  }

  /** Run schemas with their input and output file config names (for the editor's pickers). */
  listAssayRunSchemas(signal?: AbortSignal): Promise<AssayRunSchema[]> {
    return this.allPages<AssayRunSchema>('/assay-run-schemas', 'assayRunSchemas', { pageSize: 100 }, signal);
  }

  /** The input generators of a run (one per input file config of its schema). */
  listInputGenerators(assayRunId: string, signal?: AbortSignal): Promise<AutomationInputGenerator[]> {
    return this.allPages<AutomationInputGenerator>(
      `/assay-runs/${encodeURIComponent(assayRunId)}/automation-input-generators`,
      'automationInputGenerators',
      {},
      signal,
    );
  }

  async generateInput(generatorId: string, signal?: AbortSignal, onWait?: OnWait): Promise<string> {
    const res = await this.http.request<{ taskId: string }>({
      method: 'POST',
      path: `/automation-input-generators/${encodeURIComponent(generatorId)}:generate-input`,
      signal,
      onWait,
    });
    if (!res.data?.taskId) throw new LabError('BAD_RESPONSE', 'benchling.generateInputNoTaskId', { generator: generatorId });
    return res.data.taskId;
  }

  async getBlob(blobId: string, signal?: AbortSignal): Promise<Blob> {
    return (await this.http.request<Blob>({ method: 'GET', path: `/blobs/${encodeURIComponent(blobId)}`, signal })).data;
  }

  async getDownloadUrl(blobId: string, signal?: AbortSignal): Promise<BlobUrl> {
    const res = await this.http.request<BlobUrl>({ method: 'GET', path: `/blobs/${encodeURIComponent(blobId)}/download-url`, signal });
    requireField(res.data, `Benchling GET /blobs/${blobId}/download-url`, 'downloadURL');
    return res.data;
  }

  /**
   * Downloads a blob through its pre-signed URL (fetched without Benchling auth), into `toFile`
   * (written to a temp file, then renamed, so a reader never sees half a file) or into memory.
   * A URL that has expired by the time it is used (S3 answers 403) is fetched again.
   */
  async downloadBlob(blobId: string, o: { toFile?: string; signal?: AbortSignal } = {}): Promise<{ size: number; buffer?: Buffer; path?: string }> {
    const maxUrls = 4;
    for (let attempt = 1; ; attempt++) {
      const { downloadURL } = await this.getDownloadUrl(blobId, o.signal);
      let res;
      try {
        res = await this.http.request<Readable>({ method: 'GET', path: downloadURL, absolute: true, responseType: 'stream', signal: o.signal });
      } catch (err) {
        if (!(err instanceof LabError) || err.status !== 403) throw err;
        if (attempt < maxUrls) continue;
        throw new LabError('HTTP', 'benchling.downloadUrlExpired', { blob: blobId, attempts: attempt }, { status: 403 });
      }
      if (!o.toFile) {
        const chunks: Buffer[] = [];
        for await (const c of res.data) chunks.push(c as Buffer);
        const buffer = Buffer.concat(chunks);
        return { size: buffer.length, buffer };
      }
      const tmp = `${o.toFile}.${process.pid}.${Date.now()}.part`;
      try {
        await pipeline(res.data, fs.createWriteStream(tmp), { signal: o.signal });
        const size = fs.statSync(tmp).size;
        fs.renameSync(tmp, o.toFile);
        return { size, path: o.toFile };
      } catch (err) {
        fs.rmSync(tmp, { force: true });
        throw err;
      }
    }
  }

  /** Archives processors (and their linked results), e.g. before processing a corrected file anew. */
  async archiveOutputProcessors(ids: string[], reason = 'Made in error', signal?: AbortSignal): Promise<void> {
    await this.http.request({ method: 'POST', path: '/automation-output-processors:archive', json: { automationOutputProcessorIds: ids, reason }, signal });
  }

  /** Points a processor at another file, to process it again. */
  async updateOutputProcessorFile(processorId: string, fileId: string, signal?: AbortSignal): Promise<AutomationOutputProcessor> {
    const res = await this.http.request<AutomationOutputProcessor>({
      method: 'PATCH',
      path: `/automation-output-processors/${encodeURIComponent(processorId)}`,
      json: { fileId },
      // Setting the same file again has the same result: safe to retry.
      idempotent: true,
      signal,
    });
    return res.data;
  }

  /** Every item of a `nextToken`-paged list. */
  private async allPages<T>(path: string, key: string, query: Record<string, string | number>, signal?: AbortSignal, onWait?: OnWait): Promise<T[]> {
    const items: T[] = [];
    let nextToken: string | undefined;
    do {
      const res = await this.http.request<Record<string, unknown>>({ method: 'GET', path, query: { ...query, nextToken }, signal, onWait });
      const page = (res.data?.[key] as T[] | undefined) ?? [];
      // Every listed object is used by its id (a run, a generator, a processor, a schema).
      for (const item of page) requireField(item, `Benchling GET ${path} (${key})`, 'id');
      items.push(...page);
      nextToken = (res.data.nextToken as string | undefined) || undefined;
    } while (nextToken);
    return items;
  }

  close(): void {
    this.http.close();
  }
}

/** A processor answer with what the pack uses next: its id (for `:process-output`) and status. */
function checkProcessor(p: AutomationOutputProcessor, what: string): AutomationOutputProcessor {
  requireField(p, what, 'id');
  requireField(p, what, 'status');
  return p;
}
