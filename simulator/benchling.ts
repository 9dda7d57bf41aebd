// Benchling REST API v2 simulator: a real HTTP server (node:http, no framework) that answers the
// lab-automation endpoints the way /work/shared/reference/benchling-api.md and the Benchling OpenAPI
// spec describe them: blobs (single-part and multipart), assay runs, automation output processors,
// automation input generators and async tasks, with Basic API-key auth, a per-tenant rate limit,
// pre-signed download URLs served by the simulator itself, and fault injection.
//
// Everything is kept in memory except multipart part bytes, which go to a temp directory
// (os.tmpdir()/labwire-sim-<pid>-<rand>, removed on close) so a 1 GiB upload never sits in memory.
//
// How to make processing FAIL (for tests and demos):
//   * a blob whose NAME contains "FAIL" (any case) fails the whole file: task FAILED, processor
//     FAILED, an errorFile blob is attached;
//   * a blob whose CONTENT has one or more lines starting with "#FAIL" (any case) has failing rows:
//     with completeWithErrors false (default) the whole file FAILS as above; with
//     completeWithErrors true the task SUCCEEDS, the processor is SUCCEEDED with
//     progressStats.rowsFailed = number of #FAIL lines and an errorFile listing them.
//   * an input generator whose config name contains "FAIL" fails :generate-input.
// Data rows = non-empty lines after the first (header) line that do not start with "#".
//
// Layout: this file is the server (plumbing, routes, handlers, inspection); simulator/benchling/
// holds the public types (types.ts), fault picking and applying (faults.ts), the internal records
// (records.ts) and the request helpers, body checks and content scanner (requests.ts).
import { listen, portOf, shutdown } from './http-server';
import * as http from 'node:http';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { emptyFaultCounters, errorBody, FaultPlan, sendFault, trickle, type FaultProbabilities, type FaultSpec, type FaultTimings } from './benchling/faults';
import type { BlobRecord, GeneratorRecord, PartRecord, ProcessorRecord, ProgressStats, RunRecord, TaskRecord } from './benchling/records';
import { ApiError, BLOB_TYPES, badRequest, checkBody, decodeBase64, iso, LineScanner, md5Hex, notFound, randAlnum, unknownId, type Ctx, type Handler, type Reply, type Route, type ScanResult } from './benchling/requests';
import type { BenchlingSimOptions, BlobInfo, ProcessorInfo, RateLimitOptions, RequestLogEntry, SimCounters, SimExchange, TaskInfo, AddAssayRunOptions } from './benchling/types';

// ---------------------------------------------------------------------------------------------
// Public types (simulator/benchling/types.ts, simulator/benchling/faults.ts)
// ---------------------------------------------------------------------------------------------

export * from './benchling/types';
export {
  FAULT_KINDS,
  type BasicFaultKind,
  type BasicFaultSpec,
  FAULT_SHARE_KEYS,
  faultPhase,
  resolveFaultKind,
  spreadFaults,
  type FaultKind,
  type FaultPhase,
  type FaultProbabilities,
  type FaultSpec,
  type FaultTimings,
} from './benchling/faults';

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

export const DEFAULT_API_KEY = 'sk_sim_DEMO_KEY_not_secret';
export const API_BASE_PATH = '/api/v2';

/**
 * Single-part (POST /blobs) decoded size limit. The hard server maximum is UNCONFIRMED in the
 * reference; Benchling says blobs over 10MB "should"/"must" be multipart, and we keep the
 * client to ≤ 10,000,000 bytes single-part, so the simulator rejects anything larger.
 */
export const MAX_SINGLE_PART_BYTES = 10_000_000;
/**
 * Multipart part sizes. The reference documents "at least 5MB except the last part" and only
 * recommends ~10MB. Whether 5MB means 5,000,000 or 5 MiB, and whether there is a hard maximum,
 * are UNCONFIRMED; the simulator is deliberately strict: every part but the last must be
 * 5,242,880..10,000,000 bytes inclusive, and the last ≤ 10,000,000.
 */
export const MIN_PART_BYTES = 5_242_880;
export const MAX_PART_BYTES = 10_000_000;
/** Blobs up to this size keep their bytes in memory (for processing and download). */
export const IN_MEMORY_BLOB_BYTES = 10_000_000;

export const SEED = {
  schemaId: 'assaysch_simPlateReader1',
  schemaName: 'Plate Reader Run',
  outputConfigName: 'Plate Reader Output',
  inputConfigName: 'Plate Reader Input',
  runs: [
    { id: '5eed0001-0000-4000-8000-000000000001', entryId: 'etr_SIMrun01', inputGeneratorId: 'aif_SIMgen01' },
    { id: '5eed0001-0000-4000-8000-000000000002', entryId: 'etr_SIMrun02', inputGeneratorId: 'aif_SIMgen02' },
    { id: '5eed0001-0000-4000-8000-000000000003', entryId: 'etr_SIMrun03', inputGeneratorId: 'aif_SIMgen03' },
  ],
} as const;

const ARCHIVE_REASONS = ['Made in error', 'Retired', 'Expended', 'Shipped', 'Contaminated', 'Expired', 'Missing', 'Other'];

// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

export class BenchlingSim {
  /** 'http://HOST:PORT' once started. */
  url = '';
  /** url + '/api/v2' */
  apiBase = '';
  readonly apiKeys: string[];
  readonly requestLog: RequestLogEntry[] = [];
  readonly counters: SimCounters = SimCountersInit();
  /** Exceptions thrown by the validator hook. */
  readonly validatorErrors: unknown[] = [];

  private server: http.Server;
  private opts: Required<Omit<BenchlingSimOptions, 'validator' | 'faults' | 'rateLimit' | 'faultTimings' | 'random'>> & {
    validator?: (e: SimExchange) => void;
  };
  private rateLimit: RateLimitOptions | false;
  private faults: FaultPlan;
  private inFlight = 0;
  private window = { start: 0, count: 0 };
  private seq = 0;
  private closed = false;
  private tmpDir = '';
  private timers = new Set<NodeJS.Timeout>();
  private secret = crypto.randomBytes(32);
  private tokens = new Map<string, number>();
  private expiredUrlsToIssue = 0;

  private blobs = new Map<string, BlobRecord>();
  private runs = new Map<string, RunRecord>();
  private processors = new Map<string, ProcessorRecord>();
  private generators = new Map<string, GeneratorRecord>();
  private tasks = new Map<string, TaskRecord>();
  private routes: Route[];

  constructor(options: BenchlingSimOptions = {}) {
    this.opts = {
      port: options.port ?? 0,
      host: options.host ?? '127.0.0.1',
      apiKeys: options.apiKeys ?? [DEFAULT_API_KEY],
      taskDurationMs: options.taskDurationMs ?? 1500,
      downloadUrlTtlSec: options.downloadUrlTtlSec ?? 300,
      validator: options.validator,
      listPageSize: options.listPageSize ?? 50,
      maxBodyBytes: options.maxBodyBytes ?? 20 * 1024 * 1024,
      oauthClients: options.oauthClients ?? [],
      tokenTtlSec: options.tokenTtlSec ?? 900,
      seed: options.seed ?? true,
    };
    this.apiKeys = this.opts.apiKeys;
    this.rateLimit = options.rateLimit === undefined ? { limit: 60, windowMs: 30_000 } : options.rateLimit;
    this.faults = new FaultPlan(options.faults ?? {}, options.faultTimings ?? {}, options.random ?? Math.random);
    this.routes = this.buildRoutes();
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        // last resort: never crash the process
        if (!res.headersSent && !res.destroyed) {
          this.sendJson(res, 500, errorBody('api_error', `Simulator error: ${String(err && err.message)}`));
        }
      });
    });
    this.server.keepAliveTimeout = 5000;
    if (this.opts.seed) this.seedData();
  }

  // ------------------------------------------------------------------------- lifecycle

  async start(): Promise<this> {
    this.tmpDir = await fsp.mkdtemp(path.join(os.tmpdir(), `labwire-sim-${process.pid}-`));
    this.url = await listen(this.server, this.opts.host, this.opts.port);
    this.apiBase = this.url + API_BASE_PATH;
    return this;
  }

  get port(): number {
    return portOf(this.server);
  }

  /** Stops the server, destroys every open socket (hung requests included), removes the temp dir. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await shutdown(this.server);
    if (this.tmpDir) await fsp.rm(this.tmpDir, { recursive: true, force: true });
  }

  // ------------------------------------------------------------------------- test controls

  /** The next `n` download URLs are issued already expired (S3 answers 403 AccessDenied). */
  expireNextDownloadUrls(n: number): void {
    this.expiredUrlsToIssue = n;
  }

  /**
   * Queue a deterministic fault. Before-handling kinds change no state; 'slow' / 'trickle' delay
   * the real answer; after-handling kinds ('resetAfter', '500After', 'htmlAfter', or 'reset' /
   * '500' / 'html' with `after: true`) let the request act, then lose the answer.
   */
  injectFault(spec: FaultSpec): void {
    this.faults.inject(spec);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Replace the probabilistic fault shares. */
  setFaultProbabilities(p: FaultProbabilities): void {
    this.faults.setProbabilities(p);
  }

  /** The probabilistic fault shares in force. */
  getFaultProbabilities(): FaultProbabilities {
    return this.faults.probabilities;
  }

  /** Change the 'slow' / 'trickle' delays. */
  setFaultTimings(t: FaultTimings): void {
    this.faults.setTimings(t);
  }

  /** Requests received whose answer is not finished yet (hangs, slow and trickled answers included). */
  get openRequests(): number {
    return this.inFlight;
  }

  /** Change the rate limit (resets the current window). */
  setRateLimit(r: RateLimitOptions | false): void {
    this.rateLimit = r;
    this.window = { start: 0, count: 0 };
  }

  /** Start a fresh rate-limit window. */
  resetRateLimitWindow(): void {
    this.window = { start: 0, count: 0 };
  }

  setTaskDurationMs(ms: number): void {
    this.opts.taskDurationMs = ms;
  }

  setValidator(v: ((e: SimExchange) => void) | undefined): void {
    this.opts.validator = v;
  }

  resetCounters(): void {
    Object.assign(this.counters, SimCountersInit());
  }

  clearRequestLog(): void {
    this.requestLog.length = 0;
  }

  /** Issue a bearer token accepted like an API key (OAuth hook). */
  issueToken(ttlSec = this.opts.tokenTtlSec): { access_token: string; token_type: 'Bearer'; expires_in: number } {
    const token = 'simtok_' + crypto.randomBytes(24).toString('base64url');
    this.tokens.set(token, Date.now() + ttlSec * 1000);
    return { access_token: token, token_type: 'Bearer', expires_in: ttlSec };
  }

  /** Invalidates every issued token (as a revoked app secret or an early expiry would). */
  revokeAllTokens(): void {
    this.tokens.clear();
  }

  revokeToken(token: string): void {
    this.tokens.delete(token);
  }

  /** The Authorization header value for an API key (default: the first configured key). */
  authHeader(apiKey = this.apiKeys[0]): string {
    return 'Basic ' + Buffer.from(`${apiKey}:`).toString('base64');
  }

  // ------------------------------------------------------------------------- inspection

  getBlob(id: string): BlobInfo | undefined {
    const b = this.blobs.get(id);
    return b ? this.blobInfo(b) : undefined;
  }

  listBlobs(): BlobInfo[] {
    return [...this.blobs.values()].map((b) => this.blobInfo(b));
  }

  /** Bytes of a COMPLETE blob (reads the parts from disk for big multipart blobs). */
  async readBlob(id: string): Promise<Buffer> {
    const b = this.blobs.get(id);
    if (!b || b.uploadStatus !== 'COMPLETE') throw new Error(`blob ${id} is not COMPLETE`);
    if (b.data) return b.data;
    const bufs: Buffer[] = [];
    for (const p of b.finalParts ?? []) bufs.push(await fsp.readFile(p.file));
    return Buffer.concat(bufs);
  }

  /** Store a COMPLETE blob directly (no HTTP, no rate limit). */
  addBlob(name: string, content: Buffer | string, opts: { mimeType?: string; type?: 'RAW_FILE' | 'VISUALIZATION' } = {}): BlobInfo {
    const b = this.storeBlob(name, Buffer.from(content), opts.mimeType ?? 'application/octet-stream', opts.type ?? 'RAW_FILE');
    return this.blobInfo(b);
  }

  /** AutomationOutputProcessor as the API shows it. */
  getProcessor(id: string): Record<string, unknown> | undefined {
    const p = this.processors.get(id);
    return p ? this.processorJson(p) : undefined;
  }

  listProcessors(): Array<Record<string, unknown>> {
    return [...this.processors.values()].map((p) => this.processorJson(p));
  }

  /** Every output processor with its file, status and tasks (for counting, not API-shaped). */
  listProcessorInfo(): ProcessorInfo[] {
    const tasksByTarget = new Map<string, string[]>();
    for (const t of this.tasks.values()) {
      if (t.kind !== 'process-output') continue;
      const list = tasksByTarget.get(t.targetId) ?? [];
      list.push(t.id);
      tasksByTarget.set(t.targetId, list);
    }
    return [...this.processors.values()].map((p) => ({
      id: p.id,
      assayRunId: p.assayRunId,
      configName: p.configName,
      fileId: p.fileId,
      fileName: this.blobs.get(p.fileId)?.name ?? '',
      status: p.status,
      archived: p.archiveReason !== null,
      errorFileId: p.errorFileId,
      taskIds: tasksByTarget.get(p.id) ?? [],
      createdAt: iso(p.createdAt),
    }));
  }

  getInputGenerator(id: string): Record<string, unknown> | undefined {
    const g = this.generators.get(id);
    return g ? this.generatorJson(g) : undefined;
  }

  listInputGenerators(): Array<Record<string, unknown>> {
    return [...this.generators.values()].map((g) => this.generatorJson(g));
  }

  getTask(id: string): TaskInfo | undefined {
    const t = this.tasks.get(id);
    return t ? { ...t } : undefined;
  }

  listTasks(): TaskInfo[] {
    return [...this.tasks.values()].map((t) => ({ ...t }));
  }

  /** AssayRun as the API shows it. */
  getRun(id: string): Record<string, unknown> | undefined {
    const r = this.runs.get(id);
    return r ? this.runJson(r) : undefined;
  }

  listRuns(): Array<Record<string, unknown>> {
    return [...this.runs.values()].map((r) => this.runJson(r));
  }

  /**
   * Add an assay run (plus one input generator per input config). Returns the AssayRun JSON.
   * Defaults: the seeded schema, a fresh etr_ entry id, output config "Plate Reader Output",
   * input config "Plate Reader Input".
   */
  addAssayRun(o: AddAssayRunOptions = {}): Record<string, unknown> {
    const schemaId = o.schemaId ?? SEED.schemaId;
    const existingSchemaName = [...this.runs.values()].find((r) => r.schemaId === schemaId)?.schemaName;
    const run: RunRecord = {
      id: o.id ?? crypto.randomUUID(),
      schemaId,
      schemaName: o.schemaName ?? existingSchemaName ?? (schemaId === SEED.schemaId ? SEED.schemaName : 'Sim Assay Run'),
      entryId: o.entryId === undefined ? `etr_${randAlnum(8)}` : o.entryId,
      outputConfigNames: o.outputConfigNames ?? [SEED.outputConfigName],
      inputConfigNames: o.inputConfigNames ?? [SEED.inputConfigName],
      fields: o.fields ?? defaultRunFields(this.runs.size + 1),
      createdAt: o.createdAt ?? Date.now(),
      projectId: o.projectId === undefined ? 'src_SIMproj1' : o.projectId,
    };
    if (this.runs.has(run.id)) throw new Error(`assay run ${run.id} already exists`);
    this.runs.set(run.id, run);
    for (const name of run.inputConfigNames) {
      const g: GeneratorRecord = {
        id: `aif_${randAlnum(8)}`,
        assayRunId: run.id,
        configName: name,
        fileId: null,
        status: 'NOT_STARTED',
        createdAt: run.createdAt,
        modifiedAt: run.createdAt,
      };
      this.generators.set(g.id, g);
    }
    return this.runJson(run);
  }

  /** Input generator ids of a run. */
  inputGeneratorIds(runId: string): string[] {
    return [...this.generators.values()].filter((g) => g.assayRunId === runId).map((g) => g.id);
  }

  // ------------------------------------------------------------------------- seed

  private seedData(): void {
    const base = Date.parse('2026-01-05T09:00:00.000Z');
    SEED.runs.forEach((r, i) => {
      this.addAssayRun({ id: r.id, entryId: r.entryId, createdAt: base + i * 3_600_000 });
      // give the seeded generators stable ids
      const g = [...this.generators.values()].find((x) => x.assayRunId === r.id);
      if (g) {
        this.generators.delete(g.id);
        g.id = r.inputGeneratorId;
        this.generators.set(g.id, g);
      }
    });
  }

  // ------------------------------------------------------------------------- JSON views

  private blobJson(b: BlobRecord): Record<string, unknown> {
    return { id: b.id, name: b.name, mimeType: b.mimeType, type: b.type, uploadStatus: b.uploadStatus };
  }

  private blobInfo(b: BlobRecord): BlobInfo {
    const parts = b.finalParts ?? [...b.parts.values()].sort((x, y) => x.partNumber - y.partNumber);
    return {
      id: b.id,
      name: b.name,
      type: b.type,
      mimeType: b.mimeType,
      uploadStatus: b.uploadStatus,
      multipart: b.multipart,
      md5: b.md5,
      size: b.size,
      parts: parts.map((p) => ({ partNumber: p.partNumber, size: p.size, md5: p.md5, eTag: p.eTag })),
      inMemory: b.data !== undefined,
      createdAt: iso(b.createdAt),
    };
  }

  private runJson(r: RunRecord): Record<string, unknown> {
    return {
      id: r.id,
      apiURL: `${this.apiBase || 'http://127.0.0.1' + API_BASE_PATH}/assay-runs/${r.id}`,
      archiveRecord: null,
      createdAt: iso(r.createdAt),
      creator: { id: 'ent_SIMuser1', handle: 'labwire-sim', name: 'Labwire Simulator' },
      entryId: r.entryId,
      equipmentId: null,
      fields: r.fields,
      isReviewed: false,
      projectId: r.projectId,
      schema: { id: r.schemaId, name: r.schemaName },
      v3Id: `run_${r.id.slice(0, 8)}`,
      validationComment: null,
      validationStatus: 'VALID',
    };
  }

  private processorJson(p: ProcessorRecord): Record<string, unknown> {
    const file = this.blobs.get(p.fileId);
    const errorFile = p.errorFileId ? this.blobs.get(p.errorFileId) : undefined;
    return {
      id: p.id,
      apiURL: `${this.apiBase}/automation-output-processors/${p.id}`,
      archiveRecord: p.archiveReason ? { reason: p.archiveReason } : null,
      assayRunId: p.assayRunId,
      automationFileConfig: { name: p.configName },
      completeWithErrors: p.completeWithErrors,
      createdAt: iso(p.createdAt),
      errorFile: errorFile ? this.blobJson(errorFile) : null,
      file: file ? this.blobJson(file) : null,
      modifiedAt: iso(p.modifiedAt),
      progressStats: { ...p.progress },
      status: p.status,
      transforms: [],
    };
  }

  private generatorJson(g: GeneratorRecord): Record<string, unknown> {
    const file = g.fileId ? this.blobs.get(g.fileId) : undefined;
    return {
      id: g.id,
      apiURL: `${this.apiBase}/automation-input-generators/${g.id}`,
      assayRunId: g.assayRunId,
      automationFileConfig: { name: g.configName },
      createdAt: iso(g.createdAt),
      file: file ? this.blobJson(file) : null,
      modifiedAt: iso(g.modifiedAt),
      status: g.status,
      transforms: [],
    };
  }

  private taskJson(t: TaskRecord): Record<string, unknown> {
    if (t.status === 'RUNNING') return { status: 'RUNNING' };
    if (t.status === 'FAILED') return { status: 'FAILED', message: t.message ?? 'Task failed.' };
    return { status: 'SUCCEEDED', response: t.response ?? {} };
  }

  // ------------------------------------------------------------------------- HTTP plumbing

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = Date.now();
    const seq = ++this.seq;
    this.counters.requests++;
    const method = (req.method ?? 'GET').toUpperCase();
    const u = new URL(req.url ?? '/', 'http://sim.invalid');
    const pathname = u.pathname;
    const entry: RequestLogEntry = { seq, method, path: pathname, status: 0, time: started, durationMs: 0 };
    this.requestLog.push(entry);
    this.inFlight++;
    let open = true;
    const closed = () => {
      if (open) this.inFlight--;
      open = false;
    };
    res.on('close', closed);
    res.on('finish', closed);
    res.on('finish', () => {
      entry.status = res.statusCode;
      entry.durationMs = Date.now() - started;
      this.counters.byStatus[String(res.statusCode)] = (this.counters.byStatus[String(res.statusCode)] ?? 0) + 1;
    });
    const isApi = pathname === API_BASE_PATH || pathname.startsWith(API_BASE_PATH + '/') || pathname.startsWith(API_BASE_PATH + ':');

    // 1. body (with a size limit)
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > this.opts.maxBodyBytes) {
      this.reject413(req, res, isApi);
      return;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    let tooLarge = false;
    try {
      for await (const c of req) {
        total += (c as Buffer).length;
        if (total > this.opts.maxBodyBytes) {
          tooLarge = true;
          break;
        }
        chunks.push(c as Buffer);
      }
    } catch {
      return; // client went away
    }
    if (tooLarge) {
      this.reject413(req, res, isApi);
      return;
    }
    if (this.closed) {
      req.socket.destroy();
      return;
    }
    const rawBody = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);

    // 2. faults: the deterministic queue first, then the probabilistic shares
    const isDownload = pathname.startsWith('/sim-s3/');
    const fault = this.faults.pick(method, pathname, isDownload);
    if (fault) {
      entry.fault = fault.kind;
      this.counters.faults[fault.kind]++;
    }
    if (fault?.phase === 'before') {
      sendFault(fault.kind as Parameters<typeof sendFault>[0], req, res, this.faultWire(isApi, method, pathname, u.searchParams));
      return;
    }
    if (fault?.kind === 'slow') {
      // The server is slow: it still acts when the client has given up meanwhile.
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.timers.delete(t);
          resolve();
        }, fault.delayMs ?? 0);
        this.timers.add(t);
      });
      if (this.closed) {
        req.socket.destroy();
        return;
      }
    }

    // 3. pre-signed downloads (no auth, no rate limit, no state: an after-handling fault is sent instead)
    if (isDownload) {
      if (fault?.phase === 'after') {
        sendFault(fault.kind as Parameters<typeof sendFault>[0], req, res, this.faultWire(false, method, pathname, u.searchParams));
        return;
      }
      await this.serveDownload(pathname, u.searchParams, method, res);
      return;
    }

    const query = u.searchParams;
    const contentType = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    let parsedBody: unknown;
    let bodySkipped: string | undefined;
    let reply: Reply;
    try {
      if (!isApi) throw new ApiError(404, 'invalid_request_error', `No such route: ${method} ${pathname}`);
      const sub = pathname.slice(API_BASE_PATH.length) || '/';
      const match = this.matchRoute(sub);
      // 4. rate limit (per tenant, shared by all callers; GET /blobs/{id}/download is exempt, as documented)
      if (!(match?.route.noRateLimit && method === 'GET')) {
        try {
          this.rateLimitCheck();
        } catch (err) {
          entry.rateLimited = true;
          throw err;
        }
      }
      if (!match) throw new ApiError(404, 'invalid_request_error', `No such route: ${method} ${pathname}`);
      const { route, params } = match;
      // 5. auth
      if (!route.noAuth) this.authenticate(req);
      const handler = route.methods[method];
      if (!handler) {
        throw new ApiError(405, 'invalid_request_error', `Method ${method} is not allowed on ${pathname}.`, {}, );
      }
      // 6. body parsing
      if (rawBody.length > 0) {
        if (contentType === 'application/x-www-form-urlencoded') {
          parsedBody = Object.fromEntries(new URLSearchParams(rawBody.toString('utf8')));
        } else {
          try {
            parsedBody = JSON.parse(rawBody.toString('utf8'));
          } catch {
            bodySkipped = 'not-json';
            throw badRequest('The request body is not valid JSON.');
          }
        }
      }
      reply = await handler({ method, path: pathname, query, params, body: parsedBody, rawBody, contentType, req });
    } catch (err) {
      reply = this.errorReply(err, method, pathname);
    }
    if (this.closed || res.destroyed) return;
    if (fault) entry.handledStatus = reply.status;
    // 7. after-handling faults: the server has acted; the answer is lost
    if (fault?.phase === 'after') {
      sendFault(fault.kind as Parameters<typeof sendFault>[0], req, res, this.faultWire(isApi, method, pathname, query));
      return;
    }
    const headers: Record<string, string> = { ...(reply.headers ?? {}) };
    if (isApi) Object.assign(headers, this.rateHeaders());
    if (reply.status === 405) {
      const m = this.matchRoute(pathname.slice(API_BASE_PATH.length));
      if (m) headers['allow'] = Object.keys(m.route.methods).join(', ');
    }
    if (reply.status === 302 && typeof reply.body === 'string') {
      res.writeHead(302, { ...headers, location: reply.body, 'content-length': '0' });
      res.end();
    } else if (fault?.kind === 'trickle') {
      const text = Buffer.from(JSON.stringify(reply.body));
      trickle(res, reply.status, { ...headers, 'content-type': 'application/json; charset=utf-8' }, text, this.faults.trickleByteMs, this.timers);
    } else {
      this.sendJson(res, reply.status, reply.body, headers);
    }
    if (isApi) {
      this.callValidator({
        method,
        path: pathname,
        query: Object.fromEntries(query),
        requestContentType: contentType,
        requestBody: parsedBody === undefined ? undefined : shrinkForValidator(parsedBody),
        requestBodySkipped: bodySkipped,
        requestBodyBytes: rawBody.length,
        status: reply.status,
        responseContentType: reply.status === 302 ? '' : 'application/json',
        responseBody: reply.status === 302 ? undefined : reply.body,
      });
    }
  }

  /** How a fault reaches the wire and the validator. */
  private faultWire(isApi: boolean, method: string, pathname: string, query: URLSearchParams) {
    return {
      isApi,
      sendJson: (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => this.sendJson(res, status, body, headers),
      rateHeaders: (remaining?: number) => this.rateHeaders(remaining),
      report: (status: number, body: unknown, ct: string) => {
        if (!isApi) return;
        this.callValidator({
          method,
          path: pathname,
          query: Object.fromEntries(query),
          requestContentType: '',
          requestBodySkipped: 'fault-injected',
          status,
          responseContentType: ct,
          responseBody: body,
        });
      },
    };
  }

  private reject413(req: http.IncomingMessage, res: http.ServerResponse, isApi: boolean): void {
    const body = errorBody('invalid_request_error', `Request body larger than ${this.opts.maxBodyBytes} bytes.`);
    const headers: Record<string, string> = { connection: 'close' };
    if (isApi) Object.assign(headers, this.rateHeaders());
    this.sendJson(res, 413, body, headers);
    res.on('finish', () => setImmediate(() => req.socket.destroy()));
  }

  private errorReply(err: unknown, method: string, pathname: string): Reply {
    if (err instanceof ApiError) {
      return { status: err.status, body: errorBody(err.type, err.message, err.extra) };
    }
    const msg = err instanceof Error ? err.message : String(err);
    return { status: 500, body: errorBody('api_error', `Simulator error on ${method} ${pathname}: ${msg}`) };
  }

  private sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      ...headers,
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(text)),
    });
    res.end(text);
  }

  private callValidator(ex: SimExchange): void {
    const v = this.opts.validator;
    if (!v) return;
    try {
      v(ex);
    } catch (e) {
      this.validatorErrors.push(e);
    }
  }

  // ------------------------------------------------------------------------- rate limit + auth

  private currentWindow(): { start: number; count: number } | undefined {
    if (!this.rateLimit) return undefined;
    const now = Date.now();
    if (this.window.start === 0 || now - this.window.start >= this.rateLimit.windowMs) {
      this.window = { start: now, count: 0 };
    }
    return this.window;
  }

  private rateLimitCheck(): void {
    const w = this.currentWindow();
    if (!w || !this.rateLimit) return;
    if (w.count >= this.rateLimit.limit) {
      this.counters.rateLimited++;
      // documented body; no Retry-After header (the reference says it is absent)
      throw new ApiError(429, 'invalid_request_error', 'Rate limit exceeded.');
    }
    w.count++;
  }

  private rateHeaders(remainingOverride?: number): Record<string, string> {
    const w = this.currentWindow();
    if (!w || !this.rateLimit) return {};
    const remaining = remainingOverride ?? Math.max(0, this.rateLimit.limit - w.count);
    const reset = Math.max(0, Math.ceil((w.start + this.rateLimit.windowMs - Date.now()) / 1000));
    return {
      'x-rate-limit-limit': String(this.rateLimit.limit),
      'x-rate-limit-remaining': String(remaining),
      'x-rate-limit-reset': String(reset),
    };
  }

  // 401 on EVERY operation, also where the operation's `responses` list no 401 (e.g. GET
  // /tasks/{id} declares only 200 and 404). The spec's global `security` covers every operation
  // and Benchling's auth docs say unauthenticated requests get 401 (reference §6); the spec simply
  // does not repeat it per operation. Per-operation confirmation is UNCONFIRMED, but a 401 is the
  // safe choice: it tells the user the key is wrong instead of masking it as a 404 "no such
  // task" (which a poller might read as an expired task). The contract checker accepts 401 as a
  // generic status for that reason (GENERIC_STATUSES in test/support/openapi.ts).
  private authenticate(req: http.IncomingMessage): void {
    const h = String(req.headers.authorization ?? '');
    const fail = (msg: string) => new ApiError(401, 'authentication_error', msg);
    if (!h) throw fail('Authentication required: send the API key with HTTP Basic auth (API key as user name, empty password).');
    const [scheme, value = ''] = h.split(/\s+/, 2);
    if (scheme.toLowerCase() === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      const user = i >= 0 ? decoded.slice(0, i) : decoded;
      const pass = i >= 0 ? decoded.slice(i + 1) : '';
      if (i < 0 || pass !== '' || !this.apiKeys.includes(user)) throw fail('Invalid API key.');
      return;
    }
    if (scheme.toLowerCase() === 'bearer') {
      const exp = this.tokens.get(value);
      if (exp === undefined) throw fail('Invalid access token.');
      if (exp < Date.now()) {
        this.tokens.delete(value);
        throw fail('Access token expired.');
      }
      return;
    }
    throw fail('Unsupported Authorization scheme.');
  }

  // ------------------------------------------------------------------------- routing

  private matchRoute(sub: string): { route: Route; params: string[] } | undefined {
    for (const route of this.routes) {
      const m = route.re.exec(sub);
      if (m) {
        try {
          return { route, params: m.slice(1).map((x) => decodeURIComponent(x)) };
        } catch {
          return { route, params: m.slice(1) };
        }
      }
    }
    return undefined;
  }

  private buildRoutes(): Route[] {
    const r = (template: string, methods: Record<string, Handler>, noAuth = false): Route => {
      const re = new RegExp(
        '^' +
          template
            .split(/(\{[^}]+\})/)
            .map((piece) => (piece.startsWith('{') ? '([^/:]+)' : piece.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
            .join('') +
          '$',
      );
      return { template, re, methods, noAuth };
    };
    return [
      r('/blobs', { POST: (c) => this.createBlob(c) }),
      r('/blobs:start-multipart-upload', { POST: (c) => this.startMultipart(c) }),
      r('/blobs:bulk-get', { GET: (c) => this.bulkGetBlobs(c) }),
      r('/blobs/{id}', { GET: (c) => this.getBlobRoute(c) }),
      r('/blobs/{id}/download-url', { GET: (c) => this.downloadUrl(c) }),
      { ...r('/blobs/{id}/download', { GET: (c) => this.downloadRedirect(c) }), noRateLimit: true },
      r('/blobs/{id}/parts', { POST: (c) => this.uploadPart(c) }),
      r('/blobs/{id}:complete-upload', { POST: (c) => this.completeUpload(c) }),
      r('/blobs/{id}:abort-upload', { POST: (c) => this.abortUpload(c) }),
      r('/assay-run-schemas', { GET: (c) => this.listRunSchemas(c) }),
      r('/assay-run-schemas/{id}', { GET: (c) => this.getRunSchema(c) }),
      r('/assay-runs', { GET: (c) => this.listAssayRuns(c) }),
      r('/assay-runs:bulk-get', { GET: (c) => this.bulkGetRuns(c) }),
      r('/assay-runs/{id}', { GET: (c) => this.getAssayRun(c), PATCH: (c) => this.patchAssayRun(c) }),
      r('/assay-runs/{id}/automation-input-generators', { GET: (c) => this.listGenerators(c) }),
      r('/automation-input-generators/{id}', {
        GET: (c) => this.getGenerator(c),
        PATCH: (c) => this.patchGenerator(c),
      }),
      r('/automation-input-generators/{id}:generate-input', { POST: (c) => this.generateInput(c) }),
      r('/automation-output-processors', {
        GET: (c) => this.listProcessorsRoute(c),
        POST: (c) => this.createProcessor(c),
      }),
      r('/automation-output-processors:archive', { POST: (c) => this.archiveProcessors(c, true) }),
      r('/automation-output-processors:unarchive', { POST: (c) => this.archiveProcessors(c, false) }),
      r('/automation-output-processors/{id}', {
        GET: (c) => this.getProcessorRoute(c),
        PATCH: (c) => this.patchProcessor(c),
      }),
      r('/automation-output-processors/{id}:process-output', { POST: (c) => this.processOutput(c) }),
      r('/tasks/{id}', { GET: (c) => this.getTaskRoute(c) }),
      r('/token', { POST: (c) => this.token(c) }, true),
    ];
  }

  // ------------------------------------------------------------------------- paging

  private encodeToken(offset: number, key: string): string {
    return Buffer.from(JSON.stringify({ o: offset, k: key })).toString('base64url');
  }

  private decodeToken(token: string | null, key: string): number {
    if (!token) return 0;
    try {
      const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { o?: unknown; k?: unknown };
      if (typeof t.o === 'number' && Number.isInteger(t.o) && t.o >= 0 && t.k === key) return t.o;
    } catch {
      /* fall through */
    }
    throw badRequest('Invalid nextToken (it must be passed back unchanged, with the same filters).');
  }

  private page<T>(items: T[], query: URLSearchParams, key: string, pageSize: number): { items: T[]; nextToken: string } {
    const offset = this.decodeToken(query.get('nextToken'), key);
    const slice = items.slice(offset, offset + pageSize);
    const next = offset + pageSize < items.length && pageSize > 0 ? this.encodeToken(offset + pageSize, key) : '';
    return { items: slice, nextToken: next };
  }

  // ------------------------------------------------------------------------- blobs

  private storeBlob(name: string, data: Buffer, mimeType: string, type: 'RAW_FILE' | 'VISUALIZATION'): BlobRecord {
    const b: BlobRecord = {
      id: crypto.randomUUID(),
      name,
      type,
      mimeType,
      uploadStatus: 'COMPLETE',
      multipart: false,
      md5: md5Hex(data),
      size: data.length,
      data,
      parts: new Map(),
      createdAt: Date.now(),
    };
    this.blobs.set(b.id, b);
    return b;
  }

  private createBlob(c: Ctx): Reply {
    const body = checkBody(c.body, 'BlobCreate', {
      name: { kind: 'string', required: true, maxLength: 1000 },
      type: { kind: 'string', required: true, enum: BLOB_TYPES },
      data64: { kind: 'string', required: true },
      md5: { kind: 'string', required: true },
      mimeType: { kind: 'string', maxLength: 100 },
    });
    const data = decodeBase64('data64', body.data64 as string);
    if (data.length > MAX_SINGLE_PART_BYTES) {
      throw badRequest(
        `Blob is ${data.length} bytes; single-part uploads are limited to ${MAX_SINGLE_PART_BYTES} bytes. Use a multipart upload (POST /blobs:start-multipart-upload).`,
      );
    }
    const actual = md5Hex(data);
    if (String(body.md5).toLowerCase() !== actual) {
      throw badRequest(
        `md5 mismatch: the md5 field (${String(body.md5)}) does not equal the MD5 of the decoded data64 bytes (${actual}). md5 must be the hex MD5 of the raw bytes, not of the base64 text.`,
      );
    }
    const b = this.storeBlob(
      body.name as string,
      data,
      (body.mimeType as string | undefined) ?? 'application/octet-stream',
      body.type as 'RAW_FILE' | 'VISUALIZATION',
    );
    return { status: 200, body: this.blobJson(b) };
  }

  private startMultipart(c: Ctx): Reply {
    const body = checkBody(c.body, 'BlobMultipartCreate', {
      name: { kind: 'string', required: true, maxLength: 1000 },
      type: { kind: 'string', required: true, enum: BLOB_TYPES },
      mimeType: { kind: 'string', maxLength: 100 },
    });
    const b: BlobRecord = {
      id: crypto.randomUUID(),
      name: body.name as string,
      type: body.type as 'RAW_FILE' | 'VISUALIZATION',
      mimeType: (body.mimeType as string | undefined) ?? 'application/octet-stream',
      uploadStatus: 'IN_PROGRESS',
      multipart: true,
      parts: new Map(),
      createdAt: Date.now(),
    };
    this.blobs.set(b.id, b);
    return { status: 200, body: this.blobJson(b) };
  }

  private multipartBlob(id: string): BlobRecord {
    const b = this.blobs.get(id);
    if (!b) throw unknownId('Blob', id);
    if (!b.multipart) throw badRequest(`Blob ${id} is not a multipart upload.`);
    if (b.uploadStatus !== 'IN_PROGRESS') throw badRequest(`Blob ${id} upload is ${b.uploadStatus}; it is no longer accepting changes.`);
    return b;
  }

  private async uploadPart(c: Ctx): Promise<Reply> {
    const b = this.multipartBlob(c.params[0]);
    const body = checkBody(c.body, 'BlobPartCreate', {
      partNumber: { kind: 'integer', required: true, min: 1, max: 10000 },
      data64: { kind: 'string', required: true },
      md5: { kind: 'string', required: true },
    });
    const data = decodeBase64('data64', body.data64 as string);
    const actual = md5Hex(data);
    if (String(body.md5).toLowerCase() !== actual) {
      throw badRequest(
        `md5 mismatch for part ${String(body.partNumber)}: the md5 field (${String(body.md5)}) does not equal the MD5 of the decoded data64 bytes (${actual}).`,
      );
    }
    const partNumber = body.partNumber as number;
    const dir = path.join(this.tmpDir, b.id);
    await fsp.mkdir(dir, { recursive: true });
    const file = path.join(dir, `part-${partNumber}`);
    const tmp = `${file}.${randAlnum(6)}.tmp`;
    await fsp.writeFile(tmp, data);
    if (this.closed || b.uploadStatus !== 'IN_PROGRESS') {
      await fsp.rm(tmp, { force: true });
      throw badRequest(`Blob ${b.id} upload is ${b.uploadStatus}; it is no longer accepting changes.`);
    }
    await fsp.rename(tmp, file);
    const part: PartRecord = { partNumber, size: data.length, md5: actual, eTag: `"${actual}"`, file };
    b.parts.set(partNumber, part);
    return { status: 200, body: { partNumber, eTag: part.eTag } };
  }

  private async completeUpload(c: Ctx): Promise<Reply> {
    const b = this.multipartBlob(c.params[0]);
    const body = checkBody(c.body, 'BlobComplete', { parts: { kind: 'array', required: true } });
    const list = body.parts as unknown[];
    if (list.length === 0) throw badRequest('parts must list at least one uploaded part.');
    const chosen: PartRecord[] = [];
    let prev = 0;
    for (const [i, item] of list.entries()) {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) throw badRequest(`parts[${i}] must be an object {partNumber, eTag}.`);
      const it = item as Record<string, unknown>;
      const n = it.partNumber;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 10000) {
        throw badRequest(`parts[${i}].partNumber must be an integer between 1 and 10000.`);
      }
      if (typeof it.eTag !== 'string') throw badRequest(`parts[${i}].eTag must be a string.`);
      // Strict (like S3): part numbers must be listed in ascending order without repeats.
      // Whether Benchling accepts an unordered list is UNCONFIRMED.
      if (n <= prev) throw badRequest(`parts must be listed in ascending partNumber order without duplicates (part ${n} after ${prev}).`);
      prev = n;
      const p = b.parts.get(n);
      if (!p) throw badRequest(`Part ${n} was never uploaded for blob ${b.id}.`);
      if (it.eTag !== p.eTag) throw badRequest(`eTag mismatch for part ${n}: got ${JSON.stringify(it.eTag)}, expected ${JSON.stringify(p.eTag)}.`);
      chosen.push(p);
    }
    for (const [i, p] of chosen.entries()) {
      const last = i === chosen.length - 1;
      if (p.size > MAX_PART_BYTES) {
        throw badRequest(`Part ${p.partNumber} is ${p.size} bytes; parts may be at most ${MAX_PART_BYTES} bytes.`);
      }
      if (!last && p.size < MIN_PART_BYTES) {
        throw badRequest(
          `Part ${p.partNumber} is ${p.size} bytes; every part except the last must be at least ${MIN_PART_BYTES} bytes (5 MiB).`,
        );
      }
    }
    // whole-blob MD5 and size, streaming the part files in order
    const hash = crypto.createHash('md5');
    let size = 0;
    for (const p of chosen) {
      for await (const chunk of fs.createReadStream(p.file, { highWaterMark: 1 << 20 })) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
    }
    let data: Buffer | undefined;
    if (size <= IN_MEMORY_BLOB_BYTES) data = Buffer.concat(await Promise.all(chosen.map((p) => fsp.readFile(p.file))));
    if (b.uploadStatus !== 'IN_PROGRESS') throw badRequest(`Blob ${b.id} upload is ${b.uploadStatus}.`);
    // commit
    const keep = new Set(chosen.map((p) => p.partNumber));
    for (const [n, p] of b.parts) if (!keep.has(n)) await fsp.rm(p.file, { force: true });
    b.finalParts = chosen;
    b.md5 = hash.digest('hex');
    b.size = size;
    b.data = data;
    b.uploadStatus = 'COMPLETE';
    return { status: 200, body: this.blobJson(b) };
  }

  private async abortUpload(c: Ctx): Promise<Reply> {
    const id = c.params[0];
    const b = this.blobs.get(id);
    if (!b) throw unknownId('Blob', id);
    if (!b.multipart) throw badRequest(`Blob ${id} is not a multipart upload.`);
    if (b.uploadStatus === 'COMPLETE') throw badRequest(`Blob ${id} upload is already COMPLETE.`);
    if (b.uploadStatus === 'IN_PROGRESS') {
      b.uploadStatus = 'ABORTED';
      const files = [...b.parts.values()].map((p) => p.file);
      b.parts.clear();
      await Promise.all(files.map((f) => fsp.rm(f, { force: true })));
    }
    return { status: 200, body: {} };
  }

  private getBlobRoute(c: Ctx): Reply {
    const b = this.blobs.get(c.params[0]);
    if (!b) throw notFound('Blob', c.params[0]);
    return { status: 200, body: this.blobJson(b) };
  }

  private bulkGetBlobs(c: Ctx): Reply {
    const ids = (c.query.get('blobIds') ?? '').split(',').filter(Boolean);
    const out = [];
    for (const id of ids) {
      const b = this.blobs.get(id);
      if (!b) throw unknownId('Blob', id);
      out.push(this.blobJson(b));
    }
    return { status: 200, body: { blobs: out } };
  }

  private signedUrl(blobId: string): { downloadURL: string; expiresAt: number } {
    // A URL handed out already expired stands for one that expired before it was used.
    const expired = this.expiredUrlsToIssue > 0;
    if (expired) this.expiredUrlsToIssue--;
    const expiresAt = expired ? Math.floor(Date.now() / 1000) - 1 : Math.ceil(Date.now() / 1000 + this.opts.downloadUrlTtlSec);
    const sig = crypto.createHmac('sha256', this.secret).update(`${blobId}\n${expiresAt}`).digest('hex');
    return { downloadURL: `${this.url}/sim-s3/${blobId}?expires=${expiresAt}&sig=${sig}`, expiresAt };
  }

  private downloadableBlob(id: string): BlobRecord {
    const b = this.blobs.get(id);
    if (!b) throw notFound('Blob', id);
    if (b.uploadStatus !== 'COMPLETE') throw badRequest(`Blob ${id} upload is ${b.uploadStatus}; only COMPLETE blobs can be downloaded.`);
    return b;
  }

  private downloadUrl(c: Ctx): Reply {
    const b = this.downloadableBlob(c.params[0]);
    return { status: 200, body: this.signedUrl(b.id) };
  }

  private downloadRedirect(c: Ctx): Reply {
    const b = this.downloadableBlob(c.params[0]);
    return { status: 302, body: this.signedUrl(b.id).downloadURL };
  }

  private async serveDownload(pathname: string, q: URLSearchParams, method: string, res: http.ServerResponse): Promise<void> {
    const s3err = (status: number, code: string, message: string) => {
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>${randAlnum(16)}</RequestId></Error>`;
      res.writeHead(status, { 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(xml)) });
      res.end(xml);
    };
    if (method !== 'GET' && method !== 'HEAD') return s3err(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.');
    const id = decodeURIComponent(pathname.slice('/sim-s3/'.length));
    const expires = Number(q.get('expires'));
    const sig = q.get('sig') ?? '';
    const want = crypto.createHmac('sha256', this.secret).update(`${id}\n${q.get('expires')}`).digest('hex');
    if (!Number.isFinite(expires) || sig.length !== want.length || !crypto.timingSafeEqual(Buffer.from(sig), Buffer.from(want))) {
      return s3err(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
    }
    if (Date.now() / 1000 > expires) return s3err(403, 'AccessDenied', 'Request has expired');
    const b = this.blobs.get(id);
    if (!b || b.uploadStatus !== 'COMPLETE') return s3err(404, 'NoSuchKey', 'The specified key does not exist.');
    const headers = {
      'content-type': b.mimeType,
      'content-length': String(b.size ?? 0),
      etag: `"${b.md5}"`,
      'content-disposition': `attachment; filename="${b.name.replace(/["\\\r\n]/g, '_')}"`,
    };
    res.writeHead(200, headers);
    if (method === 'HEAD') return void res.end();
    if (b.data) return void res.end(b.data);
    for (const p of b.finalParts ?? []) {
      for await (const chunk of fs.createReadStream(p.file, { highWaterMark: 1 << 20 })) {
        if (res.destroyed) return;
        if (!res.write(chunk)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              res.off('drain', done);
              res.off('close', done);
              resolve();
            };
            res.on('drain', done);
            res.on('close', done);
          });
        }
      }
    }
    res.end();
  }

  // ------------------------------------------------------------------------- assay runs

  private listAssayRuns(c: Ctx): Reply {
    const schemaId = c.query.get('schemaId');
    // The spec makes schemaId required but declares only 200 for listAssayRuns: what the real API
    // answers without it is UNCONFIRMED (Prism, the spec-driven mock, answers 422). We answer 400
    // `invalid_request_error`, the status Benchling uses for every other validation failure: the
    // safe choice, as the client treats it as a refusal that is reported and never retried. The
    // contract checker accepts it only because the request itself broke the contract.
    if (!schemaId) throw badRequest('Missing required query parameter: schemaId.');
    const ps = c.query.get('pageSize');
    let pageSize = 50;
    if (ps !== null) {
      if (!/^\d+$/.test(ps) || Number(ps) > 100) throw badRequest('pageSize must be an integer between 0 and 100.');
      pageSize = Number(ps);
    }
    const minT = c.query.get('minCreatedTime');
    const maxT = c.query.get('maxCreatedTime');
    for (const [n, v] of [['minCreatedTime', minT], ['maxCreatedTime', maxT]] as const) {
      if (v !== null && !/^-?\d+$/.test(v)) throw badRequest(`${n} must be an integer unix timestamp.`);
    }
    const ids = c.query.get('ids');
    const idSet = ids ? new Set(ids.split(',').map((s) => s.trim()).filter(Boolean)) : undefined;
    let runs = [...this.runs.values()].filter((r) => r.schemaId === schemaId);
    if (minT !== null) runs = runs.filter((r) => r.createdAt / 1000 >= Number(minT));
    if (maxT !== null) runs = runs.filter((r) => r.createdAt / 1000 <= Number(maxT));
    if (idSet) runs = runs.filter((r) => idSet.has(r.id));
    runs.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
    const key = `runs|${schemaId}|${minT ?? ''}|${maxT ?? ''}|${ids ?? ''}`;
    const pg = this.page(runs, c.query, key, pageSize);
    return { status: 200, body: { assayRuns: pg.items.map((r) => this.runJson(r)), nextToken: pg.nextToken } };
  }

  // ------------------------------------------------------------------------- run schemas

  /** Schemas are derived from the runs: each schema's file configs are those its runs use. */
  private schemaJson(schemaId: string): Record<string, unknown> | undefined {
    const runs = [...this.runs.values()].filter((r) => r.schemaId === schemaId);
    if (runs.length === 0) return undefined;
    const names = (pick: (r: RunRecord) => string[]) => [...new Set(runs.flatMap(pick))].map((name) => ({ name }));
    return {
      id: schemaId,
      name: runs[0].schemaName,
      systemName: runs[0].schemaName.toLowerCase().replace(/\W+/g, '_'),
      type: 'assay_run',
      fieldDefinitions: [],
      archiveRecord: null,
      derivedFrom: null,
      organization: { handle: 'sim', id: 'ent_sim', name: 'Simulated lab' },
      automationInputFileConfigs: names((r) => r.inputConfigNames),
      automationOutputFileConfigs: names((r) => r.outputConfigNames),
      modifiedAt: new Date(Math.max(...runs.map((r) => r.createdAt))).toISOString(),
    };
  }

  private listRunSchemas(c: Ctx): Reply {
    const ps = c.query.get('pageSize');
    if (ps !== null && (!/^\d+$/.test(ps) || Number(ps) > 100)) throw badRequest('pageSize must be an integer between 0 and 100.');
    const ids = [...new Set([...this.runs.values()].map((r) => r.schemaId))].sort();
    const pg = this.page(ids, c.query, 'schemas', ps === null ? 50 : Number(ps));
    return { status: 200, body: { assayRunSchemas: pg.items.map((id) => this.schemaJson(id)), nextToken: pg.nextToken } };
  }

  private getRunSchema(c: Ctx): Reply {
    const schema = this.schemaJson(c.params[0]);
    if (!schema) throw unknownId('Assay run schema', c.params[0]);
    return { status: 200, body: schema };
  }

  private bulkGetRuns(c: Ctx): Reply {
    const ids = (c.query.get('assayRunIds') ?? '').split(',').filter(Boolean);
    const out = [];
    for (const id of ids) {
      const r = this.runs.get(id);
      if (!r) throw unknownId('Assay run', id);
      out.push(this.runJson(r));
    }
    return { status: 200, body: { assayRuns: out } };
  }

  private getAssayRun(c: Ctx): Reply {
    const r = this.runs.get(c.params[0]);
    if (!r) throw unknownId('Assay run', c.params[0]);
    return { status: 200, body: this.runJson(r) };
  }

  /** PATCH /assay-runs/{id} (AssayRunUpdate): field values merge into the run's fields. */
  private patchAssayRun(c: Ctx): Reply {
    const r = this.runs.get(c.params[0]);
    if (!r) throw unknownId('Assay run', c.params[0]);
    const body = (c.body ?? {}) as Record<string, unknown>;
    for (const k of Object.keys(body)) if (k !== 'fields' && k !== 'equipmentId') throw badRequest(`Unknown field in AssayRunUpdate: ${k}.`);
    const fields = body.fields;
    if (fields !== undefined && (typeof fields !== 'object' || fields === null || Array.isArray(fields))) throw badRequest('fields must be an object.');
    for (const [name, f] of Object.entries((fields ?? {}) as Record<string, unknown>)) {
      if (typeof f !== 'object' || f === null || !('value' in f)) throw badRequest(`fields.${name} must be an object with a value.`);
      const value = (f as { value: unknown }).value;
      const text = value === null ? null : typeof value === 'string' ? value : JSON.stringify(value);
      r.fields[name] = { value, type: typeof value === 'number' ? 'float' : 'text', isMulti: Array.isArray(value), displayValue: text, textValue: text };
    }
    return { status: 200, body: this.runJson(r) };
  }

  // ------------------------------------------------------------------------- input generators

  private listGenerators(c: Ctx): Reply {
    const runId = c.params[0];
    if (!this.runs.has(runId)) throw unknownId('Assay run', runId);
    const gens = [...this.generators.values()].filter((g) => g.assayRunId === runId);
    const pg = this.page(gens, c.query, `aig|${runId}`, this.opts.listPageSize);
    return { status: 200, body: { automationInputGenerators: pg.items.map((g) => this.generatorJson(g)), nextToken: pg.nextToken } };
  }

  private generatorById(id: string): GeneratorRecord {
    const g = this.generators.get(id);
    if (!g) throw unknownId('Automation input generator', id);
    return g;
  }

  private getGenerator(c: Ctx): Reply {
    return { status: 200, body: this.generatorJson(this.generatorById(c.params[0])) };
  }

  private patchGenerator(c: Ctx): Reply {
    const g = this.generatorById(c.params[0]);
    const body = checkBody(c.body, 'AutomationInputGeneratorUpdate', { fileId: { kind: 'string|null' } });
    if (body.fileId !== undefined) {
      const fid = body.fileId as string | null;
      if (fid !== null && this.blobs.get(fid)?.uploadStatus !== 'COMPLETE') throw badRequest(`fileId ${fid} is not a COMPLETE blob.`);
      g.fileId = fid;
      g.modifiedAt = Date.now();
    }
    return { status: 200, body: this.generatorJson(g) };
  }

  private generateInput(c: Ctx): Reply {
    const g = this.generatorById(c.params[0]);
    if (g.status === 'RUNNING') throw badRequest(`Automation input generator ${g.id} is already running.`);
    g.status = 'RUNNING';
    g.modifiedAt = Date.now();
    const task = this.newTask('generate-input', g.id);
    this.later(this.opts.taskDurationMs, () => {
      const run = this.runs.get(g.assayRunId);
      if (/fail/i.test(g.configName)) {
        g.status = 'FAILED';
        g.modifiedAt = Date.now();
        this.finishTask(task, 'FAILED', undefined, `Input generation failed for config "${g.configName}" (simulated: config name contains FAIL).`);
        return;
      }
      const rows = ['Well,SampleId,Volume_uL'];
      const wells = ['A1', 'A2', 'A3', 'B1', 'B2', 'B3', 'C1', 'C2'];
      wells.forEach((w, i) => rows.push(`${w},${run?.entryId ?? 'sample'}-${i + 1},${(10 + i * 2.5).toFixed(1)}`));
      const blob = this.storeBlob(`${g.configName.replace(/[^A-Za-z0-9_-]+/g, '_')}_${g.assayRunId.slice(0, 8)}.csv`, Buffer.from(rows.join('\n') + '\n'), 'text/csv', 'RAW_FILE');
      g.fileId = blob.id;
      g.status = 'SUCCEEDED';
      g.modifiedAt = Date.now();
      this.finishTask(task, 'SUCCEEDED', this.generatorJson(g));
    });
    return { status: 202, body: { taskId: task.id } };
  }

  // ------------------------------------------------------------------------- output processors

  private completeBlobForProcessing(fileId: string): BlobRecord {
    const b = this.blobs.get(fileId);
    if (!b) throw badRequest(`fileId ${fileId} does not refer to a known blob.`, { invalidId: fileId });
    if (b.uploadStatus !== 'COMPLETE') throw badRequest(`Blob ${fileId} upload is ${b.uploadStatus}; the file must be a COMPLETE blob.`);
    return b;
  }

  private createProcessor(c: Ctx): Reply {
    const body = checkBody(c.body, 'AutomationOutputProcessorCreate', {
      assayRunId: { kind: 'string', required: true },
      automationFileConfigName: { kind: 'string', required: true },
      fileId: { kind: 'string', required: true },
      completeWithErrors: { kind: 'boolean' },
      folderId: { kind: 'string' },
      locationId: { kind: 'string' },
      timezone: { kind: 'string' },
    });
    const run = this.runs.get(body.assayRunId as string);
    if (!run) throw badRequest(`Assay run not found: ${String(body.assayRunId)}`, { invalidId: body.assayRunId });
    const cfg = body.automationFileConfigName as string;
    if (!run.outputConfigNames.includes(cfg)) {
      throw badRequest(
        `"${cfg}" is not an output file config of assay run ${run.id} (schema ${run.schemaId}); known output configs: ${run.outputConfigNames.map((n) => `"${n}"`).join(', ')}.`,
      );
    }
    this.completeBlobForProcessing(body.fileId as string);
    const now = Date.now();
    const p: ProcessorRecord = {
      id: `aop_${randAlnum(8)}`,
      assayRunId: run.id,
      configName: cfg,
      fileId: body.fileId as string,
      completeWithErrors: (body.completeWithErrors as boolean | undefined) ?? false,
      folderId: body.folderId as string | undefined,
      locationId: body.locationId as string | undefined,
      timezone: body.timezone as string | undefined,
      status: 'NOT_STARTED',
      archiveReason: null,
      errorFileId: null,
      progress: { rowsSucceeded: 0, rowsFailed: 0, rowsUnprocessed: 0 },
      createdAt: now,
      modifiedAt: now,
    };
    this.processors.set(p.id, p);
    return { status: 201, body: this.processorJson(p) };
  }

  private processorById(id: string): ProcessorRecord {
    const p = this.processors.get(id);
    if (!p) throw unknownId('Automation output processor', id);
    return p;
  }

  private getProcessorRoute(c: Ctx): Reply {
    return { status: 200, body: this.processorJson(this.processorById(c.params[0])) };
  }

  /**
   * PATCH {fileId}. Resets status to NOT_STARTED, progressStats to zero and errorFile to null
   * (whether Benchling resets them is UNCONFIRMED).
   */
  private patchProcessor(c: Ctx): Reply {
    const p = this.processorById(c.params[0]);
    const body = checkBody(c.body, 'AutomationOutputProcessorUpdate', { fileId: { kind: 'string', required: true } });
    if (p.status === 'RUNNING') throw badRequest(`Automation output processor ${p.id} is running; it cannot be changed now.`);
    this.completeBlobForProcessing(body.fileId as string);
    p.fileId = body.fileId as string;
    p.status = 'NOT_STARTED';
    p.progress = { rowsSucceeded: 0, rowsFailed: 0, rowsUnprocessed: 0 };
    p.errorFileId = null;
    p.modifiedAt = Date.now();
    return { status: 200, body: this.processorJson(p) };
  }

  private listProcessorsRoute(c: Ctx): Reply {
    const runId = c.query.get('assayRunId');
    const cfg = c.query.get('automationFileConfigName');
    const reason = c.query.get('archiveReason') ?? 'NOT_ARCHIVED';
    const list = [...this.processors.values()].filter((p) => {
      if (runId !== null && p.assayRunId !== runId) return false;
      if (cfg !== null && p.configName !== cfg) return false;
      if (!p.fileId) return false; // only processors with an attached file
      switch (reason) {
        case 'NOT_ARCHIVED':
          return p.archiveReason === null;
        case 'ANY_ARCHIVED':
          return p.archiveReason !== null;
        case 'ANY_ARCHIVED_OR_NOT_ARCHIVED':
          return true;
        default:
          return p.archiveReason === reason;
      }
    });
    list.sort((a, b) => a.createdAt - b.createdAt);
    const pg = this.page(list, c.query, `aop|${runId ?? ''}|${cfg ?? ''}|${reason}`, this.opts.listPageSize);
    return {
      status: 200,
      body: { automationOutputProcessors: pg.items.map((p) => this.processorJson(p)), nextToken: pg.nextToken },
    };
  }

  private archiveProcessors(c: Ctx, archive: boolean): Reply {
    const body = archive
      ? checkBody(c.body, 'AutomationOutputProcessorsArchive', {
          automationOutputProcessorIds: { kind: 'string[]', required: true },
          reason: { kind: 'string', enum: ARCHIVE_REASONS },
        })
      : checkBody(c.body, 'AutomationOutputProcessorsUnarchive', {
          automationOutputProcessorIds: { kind: 'string[]', required: true },
        });
    const ids = body.automationOutputProcessorIds as string[];
    const recs = ids.map((id) => this.processorById(id)); // all-or-nothing
    for (const p of recs) {
      p.archiveReason = archive ? ((body.reason as string | undefined) ?? 'Other') : null;
      p.modifiedAt = Date.now();
    }
    return { status: 200, body: { automationOutputProcessorIds: ids, resultIds: [] } };
  }

  /**
   * :process-output. Allowed again after SUCCEEDED/FAILED (re-processing semantics are
   * UNCONFIRMED); refused while RUNNING or archived.
   */
  private processOutput(c: Ctx): Reply {
    const p = this.processorById(c.params[0]);
    if (p.archiveReason !== null) throw badRequest(`Automation output processor ${p.id} is archived.`);
    if (p.status === 'RUNNING') throw badRequest(`Automation output processor ${p.id} is already running.`);
    const blob = this.completeBlobForProcessing(p.fileId);
    p.status = 'RUNNING';
    p.errorFileId = null;
    p.progress = { rowsSucceeded: 0, rowsFailed: 0, rowsUnprocessed: 0 };
    p.modifiedAt = Date.now();
    const task = this.newTask('process-output', p.id);
    const scan = this.scanBlob(blob).catch((e: unknown) => e as Error);
    this.later(this.opts.taskDurationMs, async () => {
      const r = await scan;
      if (this.closed) return;
      const nameFail = /fail/i.test(blob.name);
      if (r instanceof Error) {
        this.failProcessor(p, task, `Could not read the output file: ${r.message}`, { rowsSucceeded: 0, rowsFailed: 0, rowsUnprocessed: 0 }, []);
        return;
      }
      if (nameFail || (r.failLines.length > 0 && !p.completeWithErrors)) {
        const why = nameFail
          ? `file name "${blob.name}" contains FAIL`
          : `${r.failLines.length} row(s) failed (lines ${r.failLines.slice(0, 10).join(', ')})`;
        this.failProcessor(
          p,
          task,
          `Output file processing failed (simulated): ${why}.`,
          { rowsSucceeded: 0, rowsFailed: r.failLines.length, rowsUnprocessed: r.dataRows },
          r.failLines,
        );
        return;
      }
      if (r.failLines.length > 0) {
        p.errorFileId = this.errorFile(blob, r.failLines, 'Row failed (simulated #FAIL line).').id;
      }
      p.status = 'SUCCEEDED';
      p.progress = { rowsSucceeded: r.dataRows, rowsFailed: r.failLines.length, rowsUnprocessed: 0 };
      p.modifiedAt = Date.now();
      this.finishTask(task, 'SUCCEEDED', this.processorJson(p));
    });
    return { status: 202, body: { taskId: task.id } };
  }

  private failProcessor(p: ProcessorRecord, task: TaskRecord, message: string, progress: ProgressStats, lines: number[]): void {
    const blob = this.blobs.get(p.fileId);
    p.errorFileId = this.errorFile(blob, lines, message).id;
    p.status = 'FAILED';
    p.progress = progress;
    p.modifiedAt = Date.now();
    this.finishTask(task, 'FAILED', undefined, message);
  }

  private errorFile(blob: BlobRecord | undefined, lines: number[], message: string): BlobRecord {
    const rows = ['line,error'];
    if (lines.length === 0) rows.push(`,${JSON.stringify(message)}`);
    for (const l of lines) rows.push(`${l},${JSON.stringify(message)}`);
    const name = `${(blob?.name ?? 'output').replace(/\.[^.]*$/, '')}_errors.csv`;
    return this.storeBlob(name, Buffer.from(rows.join('\n') + '\n'), 'text/csv', 'RAW_FILE');
  }

  private async scanBlob(b: BlobRecord): Promise<ScanResult> {
    const s = new LineScanner();
    if (b.data) {
      s.push(b.data);
      return s.end();
    }
    for (const p of b.finalParts ?? []) {
      for await (const chunk of fs.createReadStream(p.file, { highWaterMark: 1 << 20 })) {
        if (this.closed) throw new Error('simulator closed');
        s.push(chunk as Buffer);
      }
    }
    return s.end();
  }

  // ------------------------------------------------------------------------- tasks

  private newTask(kind: TaskRecord['kind'], targetId: string): TaskRecord {
    const t: TaskRecord = { id: crypto.randomUUID(), kind, targetId, status: 'RUNNING', createdAt: Date.now() };
    this.tasks.set(t.id, t);
    return t;
  }

  private finishTask(t: TaskRecord, status: 'SUCCEEDED' | 'FAILED', response?: Record<string, unknown>, message?: string): void {
    t.status = status;
    t.finishedAt = Date.now();
    if (status === 'SUCCEEDED') t.response = response ?? {};
    else t.message = message ?? 'Task failed.';
  }

  private later(ms: number, fn: () => void | Promise<void>): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.closed) return;
      Promise.resolve()
        .then(fn)
        .catch(() => undefined);
    }, ms);
    this.timers.add(timer);
  }

  private getTaskRoute(c: Ctx): Reply {
    const t = this.tasks.get(c.params[0]);
    if (!t) throw notFound('Task', c.params[0]);
    return { status: 200, body: this.taskJson(t) };
  }

  // ------------------------------------------------------------------------- OAuth hook

  /** POST /token (client credentials). Clients come from the `oauthClients` option. */
  private token(c: Ctx): Reply {
    const form = (c.body && typeof c.body === 'object' ? c.body : {}) as Record<string, unknown>;
    if (c.contentType !== 'application/x-www-form-urlencoded') {
      return { status: 400, body: errorBody('invalid_request', 'Content-Type must be application/x-www-form-urlencoded.') };
    }
    if (form.grant_type !== 'client_credentials') {
      return { status: 400, body: errorBody('unsupported_grant_type', 'grant_type must be client_credentials.') };
    }
    let id = typeof form.client_id === 'string' ? form.client_id : undefined;
    let secret = typeof form.client_secret === 'string' ? form.client_secret : undefined;
    const h = String(c.req.headers.authorization ?? '');
    if (/^basic\s+/i.test(h)) {
      const d = Buffer.from(h.replace(/^basic\s+/i, ''), 'base64').toString('utf8');
      const i = d.indexOf(':');
      if (i >= 0) {
        id = d.slice(0, i);
        secret = d.slice(i + 1);
      }
    }
    const ok = this.opts.oauthClients.some((cl) => cl.clientId === id && cl.clientSecret === secret);
    if (!ok) return { status: 401, body: errorBody('invalid_client', 'Invalid client credentials.') };
    return { status: 200, body: this.issueToken() };
  }
}

function SimCountersInit(): SimCounters {
  return {
    requests: 0,
    rateLimited: 0,
    faults: emptyFaultCounters(),
    byStatus: {},
  };
}

function defaultRunFields(n: number): Record<string, unknown> {
  const barcode = `PLT-${String(n).padStart(4, '0')}`;
  return {
    'Plate Barcode': { value: barcode, type: 'text', isMulti: false, displayValue: barcode, textValue: barcode },
    'Read Wavelength nm': { value: 450, type: 'integer', isMulti: false, displayValue: '450', textValue: '450' },
  };
}

/** Copy of a request body for the validator with huge data64 strings replaced by 'AA=='. */
function shrinkForValidator(body: unknown): unknown {
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const o = body as Record<string, unknown>;
    if (typeof o.data64 === 'string' && o.data64.length > 65536) return { ...o, data64: 'AA==' };
  }
  return body;
}
