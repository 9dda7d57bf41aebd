/**
 * The pack's one HTTP client. Every service client (Benchling, and the robots and LIMS that
 * follow) sends its requests through here, so timeouts, retries, rate limits, proxies and error
 * wording are the same everywhere and fixed in one place.
 *
 * Retry rule: a request is retried only where a retry cannot duplicate a write.
 *  - 429 and 503: the server refused the request without acting on it → always retried.
 *  - connection refused / DNS failure: the request never reached the server → always retried.
 *  - timeout, reset, 500/502/504: the server may have acted → retried only when idempotent
 *    (GET, or a write the caller declares idempotent, such as re-sending the same blob part).
 */
import axios, { AxiosError, AxiosResponse } from 'axios';
import { Transform, type Readable } from 'stream';
import { LabError } from './errors';
import type { MessageRef } from '../messages';
import type { RateGovernor, RequestClass } from './governor';
import { NetworkAgents, NetworkOptions } from './network';
import { anySignal, backoffDelay, cancelled, sleep } from '../timing';
import { countedWait, countHttpAttempt } from '../metrics';

export type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

/** Why a request is waiting, for a node's (translated) status. */
export type WaitReason = 'rate-limit' | 'unavailable' | 'retry-network' | 'retry-timeout' | 'retry-status';

/** Told about every wait (rate limit, outage, retry); `reason` is English, `code` is for translation. */
export type OnWait = (reason: string, ms: number, code: WaitReason) => void;

export interface StreamBody {
  stream: Readable;
  length: number;
  contentType: string;
}

export interface RequestSpec {
  method: Method;
  /** Path below the client's base URL (e.g. `/blobs`), or an absolute URL with `absolute`. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  json?: unknown;
  /** Extra request headers (e.g. an Idempotency-Key); they override the defaults, not auth. */
  headers?: Record<string, string>;
  /** A streamed body; a factory, because a retry needs a fresh stream. */
  body?: () => StreamBody;
  /** Default: true for GET / PUT / DELETE, false for POST / PATCH. */
  idempotent?: boolean;
  /**
   * This request's time budget (default: the client's). JSON answers must arrive whole within it;
   * a streamed body adds time for its size; a streamed answer must then keep flowing (see send).
   */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** An absolute URL outside the API (e.g. a pre-signed download link): no auth, no governor. */
  absolute?: boolean;
  responseType?: 'json' | 'stream';
  /** Told about every wait (rate limit, outage, retry) so a node can show it in its status. */
  onWait?: OnWait;
  /** Its turn at the rate governor: `bulk` for blob parts (default `interactive`, see RequestClass). */
  priority?: RequestClass;
}

export interface HttpResponse<T> {
  status: number;
  headers: Record<string, string>;
  data: T;
}

export interface ApiErrorDescription {
  /** The service's own words (not translated). */
  message: string;
  /** What the pack adds (invalid id, error id, "check the API key"…), told in the reader's language. */
  notes?: MessageRef[];
  apiError?: Record<string, unknown>;
}

export interface HttpClientOptions {
  /** The service's name in error messages, e.g. "Benchling". */
  service: string;
  baseUrl: string;
  /** Headers that authenticate a request (called for every attempt, so tokens can renew). */
  auth?: () => Promise<Record<string, string>> | Record<string, string>;
  /** Called once when the server answers 401, before one retry (e.g. renew an OAuth token). */
  onUnauthorized?: () => Promise<boolean>;
  governor?: RateGovernor;
  timeoutMs?: number;
  /** Retries for transient failures (network, 5xx). */
  retries?: number;
  /** Retries for 429 / 503, which wait for the server rather than give up. */
  rateLimitRetries?: number;
  backoff?: { baseMs: number; maxMs: number };
  network?: NetworkOptions;
  /** Turns a service's error body into a readable message. */
  describeApiError?: (status: number, body: unknown) => ApiErrorDescription | undefined;
}

/**
 * The slowest upload we still call progress. A streamed request body of n bytes gets
 * timeoutMs + n / this rate in total: 64 KiB/s is slower than any lab uplink worth supporting, so
 * an honest slow link is never cut off, yet a dead or throttled-to-nothing one ends in minutes
 * (a 10 MiB blob part: timeout + 160 s) instead of never.
 */
export const MIN_UPLOAD_BYTES_PER_S = 64 * 1024;

const RETRY_ALWAYS_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export class HttpClient {
  readonly baseUrl: string;
  private readonly agents: NetworkAgents;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly rateLimitRetries: number;
  private readonly backoff: { baseMs: number; maxMs: number };

  constructor(private readonly opts: HttpClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.agents = new NetworkAgents(opts.network);
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.retries = opts.retries ?? 4;
    this.rateLimitRetries = opts.rateLimitRetries ?? 12;
    this.backoff = opts.backoff ?? { baseMs: 1000, maxMs: 15_000 };
  }

  get governor(): RateGovernor | undefined {
    return this.opts.governor;
  }

  async request<T = unknown>(spec: RequestSpec): Promise<HttpResponse<T>> {
    const idempotent = spec.idempotent ?? (spec.method === 'GET' || spec.method === 'PUT' || spec.method === 'DELETE');
    const url = spec.absolute ? spec.path : this.baseUrl + spec.path;
    const what = `${this.opts.service} ${spec.method} ${spec.absolute ? new URL(spec.path).pathname : spec.path}`;
    let transientTries = 0;
    let limitTries = 0;
    let reauthorized = false;

    for (;;) {
      if (spec.signal?.aborted) throw cancelled(spec.signal);
      if (!spec.absolute && this.opts.governor) await this.opts.governor.acquire(spec.signal, spec.priority);

      let res: AxiosResponse;
      // Outside the try: a failure to authenticate (e.g. a refused OAuth token) is reported as
      // itself, not mistaken for a network error of this request.
      const governed = !spec.absolute && this.opts.governor ? this.opts.governor : undefined;
      let authHeaders: Record<string, string>;
      let body: ReturnType<NonNullable<RequestSpec['body']>> | undefined;
      try {
        authHeaders = spec.absolute ? {} : ((await this.opts.auth?.()) ?? {});
        body = spec.body?.();
      } catch (err) {
        governed?.settle(); // never sent: the governor must not wait for its answer
        throw err;
      }
      try {
        res = await this.send(spec, url, body, authHeaders, what);
      } catch (err) {
        governed?.settle();
        countHttpAttempt(this.opts.service, spec.signal?.aborted ? 'cancelled' : noAnswer(err));
        body?.stream.destroy();
        if (spec.signal?.aborted) throw cancelled(spec.signal);
        // Our own deadline arrives as a ready LabError (TIMEOUT); anything else came from axios.
        const failure = err instanceof LabError ? err : networkFailure(err as AxiosError, what, spec.timeoutMs ?? this.timeoutMs);
        const code = err instanceof LabError ? err.code : String((err as AxiosError).code);
        // A certificate the machine does not trust will not be trusted on the next try either.
        const safe = !isTlsTrustError(code) && (RETRY_ALWAYS_CODES.has(code) || idempotent);
        if (safe && transientTries < this.retries) {
          const ms = backoffDelay(transientTries++, this.backoff);
          const timedOut = failure.code === 'TIMEOUT';
          spec.onWait?.(`retrying after ${timedOut ? 'timeout' : 'network error'}`, ms, timedOut ? 'retry-timeout' : 'retry-network');
          await sleep(ms, spec.signal);
          continue;
        }
        throw failure;
      }

      governed?.settle(res.headers as Record<string, unknown>, res.status);
      const status = res.status;
      countHttpAttempt(this.opts.service, status);
      if (status >= 200 && status < 300) return this.success<T>(res, spec, what);

      if (status === 401 && !reauthorized && this.opts.onUnauthorized && !spec.absolute) {
        reauthorized = true;
        if (await this.opts.onUnauthorized()) continue;
      }
      if ((status === 429 || status === 503) && limitTries < this.rateLimitRetries) {
        const ms = this.limitWait(res, limitTries++);
        if (status === 429) this.opts.governor?.blockUntil(Date.now() + ms);
        if (status === 429) spec.onWait?.('waiting for rate limit', ms, 'rate-limit');
        else spec.onWait?.(`${this.opts.service} unavailable (503), waiting`, ms, 'unavailable');
        await countedWait(sleep(ms, spec.signal));
        continue;
      }
      if (status >= 500 && idempotent && transientTries < this.retries) {
        const ms = backoffDelay(transientTries++, this.backoff);
        spec.onWait?.(`retrying after HTTP ${status}`, ms, 'retry-status');
        await sleep(ms, spec.signal);
        continue;
      }
      throw this.httpError(res, what);
    }
  }

  /**
   * One attempt, under a deadline. axios' own `timeout` only covers the wait for the headers; after
   * them it is a socket idle timeout, which a server trickling a byte a second never trips. So
   * every attempt gets a TOTAL budget (connect,
   * headers, and the whole body, which axios reads before resolving a text answer), enforced by
   * aborting a controller of ours combined with the caller's signal; the abort is reported as
   * TIMEOUT, told apart from the caller's own abort (CANCELLED) by which signal fired.
   * A streamed request body adds its length at MIN_UPLOAD_BYTES_PER_S to the budget. A streamed
   * answer (downloads) may be large, so after the headers it gets a progress watchdog instead:
   * no bytes for timeoutMs and it is destroyed with TIMEOUT.
   */
  private async send(spec: RequestSpec, url: string, body: StreamBody | undefined, authHeaders: Record<string, string>, what: string): Promise<AxiosResponse> {
    const timeoutMs = spec.timeoutMs ?? this.timeoutMs;
    const budgetMs = timeoutMs + (body ? Math.ceil((body.length / MIN_UPLOAD_BYTES_PER_S) * 1000) : 0);
    const deadline = new AbortController();
    const combined = anySignal([spec.signal, deadline.signal]);
    let reading: Readable | undefined;
    const timer = setTimeout(() => {
      const err = new LabError('TIMEOUT', 'http.timeout', { what, seconds: seconds(budgetMs) });
      deadline.abort(err);
      reading?.destroy(err);
    }, budgetMs);
    let res: AxiosResponse;
    let keepSignal = false;
    try {
      res = await this.axiosRequest(spec, url, body, authHeaders, combined.signal);
      if (spec.responseType === 'stream') {
        if (res.status >= 200 && res.status < 300) {
          // The caller reads the body later: it is watched for progress, not for total time.
          keepSignal = true;
          res.data = watchProgress(res.data as Readable, timeoutMs, what, spec.signal, combined.dispose);
        } else {
          // An error's body is read now, still under the deadline.
          reading = res.data as Readable;
          res.data = await readStreamText(reading);
        }
      }
      return res;
    } catch (err) {
      if (deadline.signal.aborted && !spec.signal?.aborted) throw deadline.signal.reason;
      throw err;
    } finally {
      clearTimeout(timer);
      if (!keepSignal) combined.dispose();
    }
  }

  private axiosRequest(spec: RequestSpec, url: string, body: StreamBody | undefined, authHeaders: Record<string, string>, signal: AbortSignal): Promise<AxiosResponse> {
    const headers: Record<string, string | number | false> = { Accept: 'application/json', ...spec.headers, ...authHeaders };
    let data: unknown;
    if (body) {
      headers['Content-Type'] = body.contentType;
      headers['Content-Length'] = body.length;
      data = body.stream;
    } else if (spec.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      data = JSON.stringify(spec.json);
    } else {
      // No body: no Content-Type either. Left alone, axios labels a body-less POST
      // `application/x-www-form-urlencoded`, and operations that declare no request body
      // (Benchling :process-output, :generate-input, :abort-upload; Genie kill) may then be
      // refused with 415 by a validating proxy. `false` tells axios to send no such header.
      headers['Content-Type'] = false;
    }
    return axios.request({
      method: spec.method,
      url,
      params: spec.query ? dropUndefined(spec.query) : undefined,
      data,
      headers,
      // 0: no idle timeout of axios' own; send() enforces a total deadline instead.
      timeout: 0,
      signal,
      responseType: spec.responseType === 'stream' ? 'stream' : 'text',
      transformResponse: (d: unknown) => d,
      validateStatus: () => true,
      // -1 is axios' "no limit"; any other value (Infinity included) pipes a streamed body
      // through a counting Transform that turns every string chunk into a new Buffer.
      maxBodyLength: -1,
      maxContentLength: Infinity,
      maxRedirects: spec.absolute ? 5 : 0,
      decompress: true,
      ...this.agents.configFor(url),
    });
  }

  private success<T>(res: AxiosResponse, spec: RequestSpec, what: string): HttpResponse<T> {
    const headers = res.headers as Record<string, string>;
    if (spec.responseType === 'stream') return { status: res.status, headers, data: res.data as T };
    const text = typeof res.data === 'string' ? res.data : '';
    if (text.trim() === '') return { status: res.status, headers, data: {} as T };
    try {
      return { status: res.status, headers, data: JSON.parse(text) as T };
    } catch {
      throw new LabError('BAD_RESPONSE', 'http.notJson', { what, status: res.status, got: describeNonJson(res) }, { status: res.status });
    }
  }

  /** How long to wait after a 429 / 503: the server's reset hint, else exponential backoff. */
  private limitWait(res: AxiosResponse, attempt: number): number {
    const reset = Number(res.headers['x-rate-limit-reset']);
    const retryAfter = Number(res.headers['retry-after']);
    const backoff = backoffDelay(attempt, this.backoff);
    if (Number.isFinite(reset) && reset >= 0) return Math.min(reset * 1000 + Math.random() * 500, 60_000) + 100;
    if (Number.isFinite(retryAfter) && retryAfter >= 0) return Math.min(retryAfter * 1000, 60_000) + 100;
    // Monthly maintenance answers 503 for up to two hours: wait longer between tries.
    return res.status === 503 ? backoffDelay(attempt, { baseMs: this.backoff.baseMs * 5, maxMs: 60_000 }) : backoff;
  }

  private httpError(res: AxiosResponse, what: string): LabError {
    const status = res.status;
    let body: unknown = res.data;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        /* not JSON: described below */
      }
    }
    const described = typeof body === 'object' && body !== null ? this.opts.describeApiError?.(status, body) : undefined;
    const detail = described?.message ?? (typeof body === 'string' ? describeNonJson(res) : JSON.stringify(body).slice(0, 300));
    const code = status === 429 ? 'RATE_LIMITED' : status === 503 ? 'UNAVAILABLE' : 'HTTP';
    const notes = described?.notes ?? [];
    return notes.length
      ? new LabError(code, 'http.statusWithNotes', { what, status, detail, notes }, { status, apiError: described?.apiError })
      : new LabError(code, 'http.status', { what, status, detail }, { status, apiError: described?.apiError });
  }

  private holds = 0;
  private closeTimer: NodeJS.Timeout | undefined;

  /**
   * Keeps the client's connections open through a close() until the returned release is called:
   * for work that must still reach the server while a flow stops (the answer of a create that is
   * in flight, the kill of what it created). Without it the config node's close, which runs in
   * the same stop as the node's own, resets the connection and the answer (the new id) is lost.
   * Releasing twice does nothing.
   */
  hold(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      if (this.holds === 0 && this.closeTimer) {
        clearTimeout(this.closeTimer);
        this.closeTimer = undefined;
        this.agents.destroy();
      }
    };
  }

  /**
   * Closes the connections: at once, or — while work holds the client (hold()) — when the last
   * hold is released, at the latest after graceMs.
   */
  close(graceMs = 15_000): void {
    if (this.holds === 0) {
      this.agents.destroy();
      return;
    }
    if (this.closeTimer) return;
    this.closeTimer = setTimeout(() => {
      this.closeTimer = undefined;
      this.agents.destroy();
    }, graceMs);
    this.closeTimer.unref?.();
  }
}

function dropUndefined(q: Record<string, string | number | boolean | undefined>): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(q)) if (v !== undefined) out[k] = v;
  return out;
}

function describeNonJson(res: AxiosResponse): string {
  const type = String(res.headers['content-type'] || 'no content type').split(';')[0];
  const text = typeof res.data === 'string' ? res.data : '';
  const title = /<title>([^<]{1,120})<\/title>/i.exec(text)?.[1]?.trim();
  if (/html/i.test(type) || /^\s*</.test(text)) return `HTML${title ? ` ("${title}")` : ''}`;
  return `${type} "${text.slice(0, 120).replace(/\s+/g, ' ')}"`;
}

function isTlsTrustError(code: string): boolean {
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code);
}

/** An attempt that got no answer, for the metrics: our deadline or axios' timeout, else the network. */
function noAnswer(err: unknown): 'timeout' | 'network' {
  if (err instanceof LabError) return err.code === 'TIMEOUT' ? 'timeout' : 'network';
  const code = String((err as AxiosError)?.code || '');
  return code === 'ECONNABORTED' || code === 'ETIMEDOUT' || /timeout/i.test(String((err as Error)?.message)) ? 'timeout' : 'network';
}

function networkFailure(err: AxiosError, what: string, timeoutMs: number): LabError {
  const code = String(err.code || '');
  if (isTlsTrustError(code)) {
    return new LabError('NETWORK', 'http.untrustedCertificate', { what, code });
  }
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || /timeout/i.test(err.message)) {
    return new LabError('TIMEOUT', 'http.timeout', { what, seconds: seconds(timeoutMs) });
  }
  const reason = code || err.message;
  return new LabError('NETWORK', 'http.network', { what, reason });
}

async function readStreamText(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    if (text.length < 64 * 1024) text += chunk.toString();
  }
  return text;
}

/** Seconds for a message: whole above 10 s, else one decimal (a 1.5 s setting reads "1.5"). */
function seconds(ms: number): number {
  return ms >= 10_000 ? Math.round(ms / 1000) : Math.round(ms / 100) / 10;
}

/**
 * A streamed answer that must keep flowing: no bytes for `idleMs` destroys it with TIMEOUT
 * (http.stalled). A consumer that has stopped reading (backpressure) is not the server stalling,
 * so the watchdog only bites while our buffers are not full. The caller's signal still cancels the
 * body; `done` runs once the stream is finished or abandoned.
 */
function watchProgress(source: Readable, idleMs: number, what: string, signal: AbortSignal | undefined, done: () => void): Readable {
  let timer: NodeJS.Timeout | undefined;
  const out: Transform = new Transform({
    transform(chunk, _enc, cb) {
      arm();
      cb(null, chunk);
    },
    flush(cb) {
      clearTimeout(timer);
      timer = undefined;
      cb();
    },
  });
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(check, idleMs);
  };
  const check = () => {
    if (out.writableNeedDrain || out.readableLength >= out.readableHighWaterMark) return arm();
    const err = new LabError('TIMEOUT', 'http.stalled', { what, seconds: seconds(idleMs) });
    source.destroy(err);
    out.destroy(err);
  };
  const onAbort = () => out.destroy(cancelled(signal));
  signal?.addEventListener('abort', onAbort, { once: true });
  source.on('error', (err) => out.destroy(err));
  out.on('close', () => {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    // An abandoned body must not keep its socket.
    if (!source.readableEnded) source.destroy();
    done();
  });
  source.pipe(out);
  arm();
  return out;
}
