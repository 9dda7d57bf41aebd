/**
 * A typed Benchling API v2 client for the lab-automation workflow, usable without Node-RED.
 * All traffic goes through the shared HttpClient (retries, per-tenant governor, proxy, CA).
 */
import { createHash } from 'crypto';
import { HttpClient, HttpClientOptions } from '../../lib/http/client';
import { badInput, LabError, registerSecret } from '../../lib/http/errors';
import { governorFor } from '../../lib/http/governor';
import type { NetworkOptions } from '../../lib/http/network';
import { pollUntil, PollOptions } from '../../lib/poll';
import { uploadBuffer, uploadFile, UploadOptions, UploadResult } from './blob-upload';
import type {
  AssayRun,
  AsyncTask,
  AutomationOutputProcessor,
  AutomationOutputProcessorCreate,
  BenchlingApiError,
} from './types';

export interface BenchlingClientOptions {
  /** `https://<tenant>.benchling.com`, or a full API base such as `https://<tenant>.benchling.com/api/v2`. */
  tenantUrl: string;
  apiKey: string;
  /** Requests per window for the tenant (Benchling's documented default: 60 per 30 s). */
  rateLimit?: { limit: number; windowMs: number };
  timeoutMs?: number;
  retries?: number;
  backoff?: { baseMs: number; maxMs: number };
  network?: NetworkOptions;
}

export const DEFAULT_RATE_LIMIT = { limit: 60, windowMs: 30_000 };

/** Turns what the user typed as the tenant URL into the API base (`…/api/v2`). */
export function apiBaseFromTenantUrl(input: string): string {
  const raw = (input || '').trim();
  if (!raw) throw badInput('Benchling tenant URL is not set (expected https://<tenant>.benchling.com)');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badInput(`Benchling tenant URL "${raw}" is not a valid URL (expected https://<tenant>.benchling.com)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw badInput(`Benchling tenant URL "${raw}" must start with https://`);
  }
  if (url.search || url.hash) throw badInput(`Benchling tenant URL "${raw}" must not contain ? or #`);
  const pathname = url.pathname.replace(/\/+$/, '');
  return `${url.origin}${pathname === '' ? '/api/v2' : pathname}`;
}

/** Benchling's `{"error": {type, message, userMessage, errorId, invalidId}}` as one readable line. */
export function describeBenchlingError(status: number, body: unknown): { message: string; apiError?: Record<string, unknown> } | undefined {
  const e = (body as { error?: BenchlingApiError })?.error;
  if (!e || typeof e !== 'object') return undefined;
  const text = e.userMessage && e.userMessage !== e.message ? `${e.message ?? ''} — ${e.userMessage}`.replace(/^ — /, '') : e.message ?? e.userMessage ?? 'no message';
  const bits = [text];
  if (e.type) bits.push(`(${e.type})`);
  if (e.invalidId) bits.push(`invalid id: ${e.invalidId}`);
  if (e.errorId) bits.push(`errorId ${e.errorId}`);
  if (status === 401) bits.push('— check the API key in the benchling-tenant config node');
  return { message: bits.join(' '), apiError: e as Record<string, unknown> };
}

export class BenchlingClient {
  readonly http: HttpClient;
  readonly apiBase: string;

  constructor(o: BenchlingClientOptions) {
    this.apiBase = apiBaseFromTenantUrl(o.tenantUrl);
    if (!o.apiKey) throw badInput('Benchling API key is not set in the benchling-tenant config node');
    registerSecret(o.apiKey);
    const authorization = `Basic ${Buffer.from(`${o.apiKey}:`).toString('base64')}`;
    const rate = o.rateLimit ?? DEFAULT_RATE_LIMIT;
    // Keyed by tenant and key identity (never the key itself) so all nodes of a tenant share it.
    const keyId = createHash('sha256').update(o.apiKey).digest('hex').slice(0, 12);
    const opts: HttpClientOptions = {
      service: 'Benchling',
      baseUrl: this.apiBase,
      auth: () => ({ Authorization: authorization }),
      governor: governorFor(`benchling ${this.apiBase} ${keyId}`, rate),
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

  async createOutputProcessor(body: AutomationOutputProcessorCreate, signal?: AbortSignal, onWait?: (r: string, ms: number) => void): Promise<AutomationOutputProcessor> {
    const res = await this.http.request<AutomationOutputProcessor>({ method: 'POST', path: '/automation-output-processors', json: body, signal, onWait });
    return res.data;
  }

  async processOutput(processorId: string, signal?: AbortSignal, onWait?: (r: string, ms: number) => void): Promise<string> {
    const res = await this.http.request<{ taskId: string }>({
      method: 'POST',
      path: `/automation-output-processors/${encodeURIComponent(processorId)}:process-output`,
      signal,
      onWait,
    });
    if (!res.data?.taskId) throw new LabError('BAD_RESPONSE', `Benchling process-output for ${processorId} returned no taskId`);
    return res.data.taskId;
  }

  /**
   * The processor of a run's file config that holds `fileId`, if there is one. Used after a crash
   * between sending a create and recording its answer, so the processor is not created twice.
   */
  async findOutputProcessor(assayRunId: string, configName: string, fileId: string, signal?: AbortSignal): Promise<AutomationOutputProcessor | undefined> {
    let nextToken: string | undefined;
    do {
      const res = await this.http.request<{ automationOutputProcessors: AutomationOutputProcessor[]; nextToken?: string }>({
        method: 'GET',
        path: '/automation-output-processors',
        query: { assayRunId, automationFileConfigName: configName, nextToken },
        signal,
      });
      const found = (res.data.automationOutputProcessors ?? []).find((p) => p.file?.id === fileId);
      if (found) return found;
      nextToken = res.data.nextToken || undefined;
    } while (nextToken);
    return undefined;
  }

  async getOutputProcessor(processorId: string, signal?: AbortSignal): Promise<AutomationOutputProcessor> {
    const res = await this.http.request<AutomationOutputProcessor>({
      method: 'GET',
      path: `/automation-output-processors/${encodeURIComponent(processorId)}`,
      signal,
    });
    return res.data;
  }

  async getTask<R = unknown>(taskId: string, signal?: AbortSignal, onWait?: (r: string, ms: number) => void): Promise<AsyncTask<R>> {
    const res = await this.http.request<AsyncTask<R>>({ method: 'GET', path: `/tasks/${encodeURIComponent(taskId)}`, signal, onWait });
    const status = res.data?.status;
    if (status !== 'RUNNING' && status !== 'SUCCEEDED' && status !== 'FAILED') {
      throw new LabError('BAD_RESPONSE', `Benchling task ${taskId} has an unknown status ${JSON.stringify(status)}`);
    }
    return res.data;
  }

  /** Follows a task with the shared poller until SUCCEEDED or FAILED. */
  waitForTask<R = unknown>(taskId: string, o: Omit<PollOptions, 'what'> & { onWait?: (r: string, ms: number) => void }): Promise<AsyncTask<R>> {
    return pollUntil(
      () => this.getTask<R>(taskId, o.signal, o.onWait),
      (t) => t.status !== 'RUNNING',
      { ...o, what: `Benchling task ${taskId}` },
    );
  }

  /** All assay runs of a schema, following `nextToken` to the end. */
  async listAssayRuns(schemaId: string, o: { signal?: AbortSignal; pageSize?: number } = {}): Promise<AssayRun[]> {
    const runs: AssayRun[] = [];
    let nextToken: string | undefined;
    do {
      const res = await this.http.request<{ assayRuns: AssayRun[]; nextToken?: string }>({
        method: 'GET',
        path: '/assay-runs',
        query: { schemaId, pageSize: o.pageSize ?? 100, nextToken },
        signal: o.signal,
      });
      runs.push(...(res.data.assayRuns ?? []));
      nextToken = res.data.nextToken || undefined;
    } while (nextToken);
    return runs;
  }

  close(): void {
    this.http.close();
  }
}
