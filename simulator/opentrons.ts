// Opentrons robot-server simulator (OT-2), one generation per instance:
//   generation 'runs'     — robot software 5.x–8.x (modelled on v8.1.0): protocols with analysis,
//                           runs idle → running ⇄ paused → succeeded / stopped / failed, actions,
//                           commands, 409 rules, cleanup rules.
//   generation 'sessions' — robot software 4.x (modelled on v4.7.0): the experimental protocol-
//                           sessions API behind the enableHttpProtocolSessions flag, at most one
//                           protocol, session state stopped (loading) → loaded → running ⇄ paused →
//                           finished / stopped / error.
// Shapes follow /work/shared/reference/opentrons-api.md and the generated OpenAPI specs.
//
// What the uploaded protocol text controls (so tests can choose behaviour by file content):
//   `# sim-steps: N`       number of protocol steps (default 4), each lasting `stepMs`
//   `SIM_ANALYSIS_ERROR`   the protocol fails analysis (runs: analysis result not-ok; 4.x: upload
//                          answers 201 with errors[] and the session goes to `error` while loading)
//   `SIM_RUN_ERROR`        the run raises halfway (runs: `failed` with errors[]; 4.x: `error`)
//   `SIM_PAUSE`            the protocol pauses itself after its first step (protocol.pause())
//   `# sim-steps: csv`     one step per data row of the CSV runtime parameter's file (robot 8.x)
//   `def add_parameters`   runtime parameters declared with parameters.add_int/add_float/add_bool/
//                          add_str/add_csv_file are listed and checked as v8.1.0 does (§2.3, §2.9);
//                          a protocol that declares none accepts any values (listed as sent).
// Data files (8.x): POST /dataFiles (multipart `file` or form `filePath`), GET /dataFiles[/{id}
// [/download]], GET /protocols/{id}/dataFiles; identical content answers 200 with the same id; no
// DELETE on 8.1.0 (405), DELETE /dataFiles/{id} from a later version (apiVersion option).
// Test controls: openDoor/closeDoor, occupy/release (a foreign run keeps the robot busy),
// goOffline(ms) (connections are reset: the robot dropped off the network), dropNextResponse
// (the request is carried out, the answer is lost), setFeatureFlag, requestLog, inspection getters.
import * as http from 'node:http';
import * as crypto from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { declaredParameters, parameterView, valueProblem, type SimParamDecl } from './opentrons-parameters';

export type OpentronsGeneration = 'runs' | 'sessions';

export interface OpentronsSimOptions {
  generation?: OpentronsGeneration;
  port?: number;
  host?: string;
  /** `GET /health` api_version; default '8.1.0' (runs) / '4.7.0' (sessions). */
  apiVersion?: string;
  /** 4.x: the enableHttpProtocolSessions advanced setting (default true). */
  featureFlag?: boolean;
  /** runs: how long an analysis stays pending, ms (default 100). */
  analysisMs?: number;
  /** 4.x: how long a new session stays `stopped` while loading, ms (default 100). */
  loadMs?: number;
  /** Duration of one protocol step, ms (default 50). */
  stepMs?: number;
  /** Time spent in stop-requested / finishing before the terminal state, ms (default 20). */
  settleMs?: number;
  robotName?: string;
}

export interface OtRequestLogEntry {
  method: string;
  path: string;
  status: number;
  time: number;
  /** The request as sent, for contract checks: query, JSON body, or multipart fields and file parts. */
  query?: Record<string, string>;
  contentType?: string;
  json?: unknown;
  form?: { fields: Record<string, string>; files: Array<{ field: string; name: string }> };
  headers?: Record<string, string | string[] | undefined>;
}

export interface SimDataFile {
  id: string;
  name: string;
  createdAt: string;
  data: Buffer;
  hash: string;
}

export interface SimAnalysis {
  id: string;
  status: 'pending' | 'completed';
  result?: 'ok' | 'not-ok' | 'parameter-value-required';
  values?: Record<string, unknown>;
  files?: Record<string, string>;
  errors: Array<Record<string, unknown>>;
  /** The run time parameters as this analysis lists them. */
  parameters: Array<Record<string, unknown>>;
  steps: number;
}

export interface StoredFile {
  name: string;
  field: string;
  data: Buffer;
  role?: 'main' | 'labware' | 'data';
}

export interface SimProtocol {
  id: string;
  createdAt: string;
  files: StoredFile[];
  /** runs: the form field `runTimeParameterValues`, parsed. */
  runTimeParameterValues?: Record<string, unknown>;
  /** runs: the form field `runTimeParameterFiles` (8.0+), parsed. */
  runTimeParameterFiles?: Record<string, string>;
  key?: string;
  declared: SimParamDecl[];
  analyses: SimAnalysis[];
  text: string;
  steps: number;
  analysisError: boolean;
  runError: boolean;
  selfPause: boolean;
  /** The newest analysis. */
  analysis: SimAnalysis;
  deleted?: boolean;
  hash: string;
}

export interface SimRun {
  id: string;
  createdAt: string;
  protocolId?: string;
  status: string;
  current: boolean;
  actions: Array<{ id: string; createdAt: string; actionType: string }>;
  errors: Array<Record<string, unknown>>;
  runTimeParameterValues?: Record<string, unknown>;
  runTimeParameterFiles?: Record<string, string>;
  labwareOffsets: Array<Record<string, unknown>>;
  /** A declared CSV parameter without a file: the robot accepts the run and fails it on play (§2.9). */
  missingFileParam?: string;
  startedAt?: string;
  completedAt?: string;
  /** Date.now() when the terminal state was entered. */
  endedAtMs?: number;
  step: number;
  /** Bumped by every play / pause / stop, so a step timer from before is ignored. */
  epoch: number;
  commands: Array<Record<string, unknown>>;
  foreign?: boolean;
  deleted?: boolean;
}

export interface SimSession {
  id: string;
  createdAt: string;
  protocolId: string;
  state: 'loaded' | 'running' | 'finished' | 'stopped' | 'paused' | 'error' | null;
  events: Array<Record<string, unknown>>;
  started: boolean;
  step: number;
  epoch: number;
  endedAtMs?: number;
  foreign?: boolean;
  deleted?: boolean;
  startRuns: number;
}

const SESSION_FLAG = 'enableHttpProtocolSessions';
const now = () => new Date().toISOString();
const uuid = () => crypto.randomUUID();

/** An answer that is not JSON (a data file download). */
class RawBody {
  constructor(readonly data: Buffer, readonly contentType: string, readonly fileName: string) {}
}

class SimHttpError extends Error {
  constructor(readonly status: number, readonly body: unknown) {
    super(`HTTP ${status}`);
  }
}

function v8err(status: number, id: string, title: string, detail: string, errorCode = '4000', extra: Record<string, unknown> = {}): SimHttpError {
  return new SimHttpError(status, { errors: [{ id, title, detail, errorCode, ...extra }] });
}

function v4err(status: number, title: string, detail: string, id = 'UncategorizedError'): SimHttpError {
  return new SimHttpError(status, { errors: [{ id, title, detail }] });
}

export class OpentronsSim {
  readonly generation: OpentronsGeneration;
  url = '';
  readonly requestLog: OtRequestLogEntry[] = [];
  readonly protocols = new Map<string, SimProtocol>();
  readonly runs = new Map<string, SimRun>();
  readonly sessions = new Map<string, SimSession>();
  /** Every protocol upload ever accepted (kept after delete, for inspection). */
  readonly uploads: SimProtocol[] = [];
  readonly dataFiles = new Map<string, SimDataFile>();
  /** Every data file ever stored (deleted or pruned ones included). */
  readonly dataFilesEver: SimDataFile[] = [];
  /** Files "on the robot's disk" for POST /dataFiles with a filePath (test control). */
  readonly robotFiles = new Map<string, Buffer>();
  doorOpen = false;
  featureFlag: boolean;
  private readonly o: Required<Omit<OpentronsSimOptions, 'port' | 'host' | 'featureFlag' | 'generation'>> & OpentronsSimOptions;
  private readonly server: http.Server;
  private readonly timers = new Set<NodeJS.Timeout>();
  private offlineUntil = 0;
  private dropQueue: Array<{ method?: string; path?: RegExp }> = [];
  private answerDelay: { method: string; path: RegExp; ms: number } | null = null;
  private activeSessionId?: string;
  private closed = false;

  constructor(opts: OpentronsSimOptions = {}) {
    this.generation = opts.generation ?? 'runs';
    this.featureFlag = opts.featureFlag ?? true;
    this.o = {
      apiVersion: this.generation === 'runs' ? '8.1.0' : '4.7.0',
      analysisMs: 100,
      loadMs: 100,
      stepMs: 50,
      settleMs: 20,
      robotName: this.generation === 'runs' ? 'sim-ot2' : 'sim-ot2-legacy',
      ...opts,
    };
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    this.server.on('connection', (s: Socket) => {
      if (Date.now() < this.offlineUntil) s.destroy();
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port ?? 0, this.o.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const addr = this.server.address() as AddressInfo;
    this.url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
    return this;
  }

  get port(): number {
    const a = this.server.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ---- test controls ---------------------------------------------------------------------------

  /** The robot drops off the network for `ms`: open connections and new ones are reset. */
  goOffline(ms: number): void {
    this.offlineUntil = Date.now() + ms;
    this.server.closeAllConnections();
  }

  /** The next matching request is carried out, but its answer never arrives (socket destroyed). */
  dropNextResponse(match: { method?: string; path?: RegExp } = {}): void {
    this.dropQueue.push(match);
  }

  /** Delays matching answers AFTER the request was carried out (e.g. a run created while Node-RED stops). null: none. */
  setAnswerDelay(d: { method: string; path: RegExp; ms: number } | null): void {
    this.answerDelay = d && { ...d, method: d.method.toUpperCase() };
  }

  /** Changes durations for the following work (analysisMs, loadMs, stepMs, settleMs). */
  setTiming(t: Partial<Pick<OpentronsSimOptions, 'analysisMs' | 'loadMs' | 'stepMs' | 'settleMs'>>): void {
    for (const [k, v] of Object.entries(t)) if (typeof v === 'number') (this.o as unknown as Record<string, number>)[k] = v;
  }

  setFeatureFlag(on: boolean): void {
    this.featureFlag = on;
  }

  openDoor(): void {
    this.doorOpen = true;
    for (const r of this.runs.values()) if (r.status === 'running') r.status = 'blocked-by-open-door';
    for (const s of this.sessions.values()) {
      if (s.state !== 'running') continue;
      this.sessionEvent(s, 'sessionCommand', 'protocol.pause', { reason: 'door opened' });
      s.state = 'paused'; // 4.x pauses the hardware when the door opens; resume continues
      s.epoch++;
    }
  }

  /** Closing the door leaves a blocked run paused (it needs a play/resume), as on a robot. */
  closeDoor(): void {
    this.doorOpen = false;
    for (const r of this.runs.values()) if (r.status === 'blocked-by-open-door') r.status = 'paused';
  }

  /** Another client's run keeps the robot busy until release(). */
  occupy(): void {
    if (this.generation === 'runs') {
      for (const r of this.runs.values()) r.current = false;
      const run = this.newRun(undefined);
      run.foreign = true;
      run.status = 'running';
      run.startedAt = now();
    } else {
      const s: SimSession = { id: uuid(), createdAt: now(), protocolId: 'someone_elses_protocol', state: 'running', events: [], started: true, step: 0, epoch: 0, foreign: true, startRuns: 1 };
      this.sessions.set(s.id, s);
    }
  }

  release(): void {
    for (const r of this.runs.values()) if (r.foreign) this.runs.delete(r.id);
    for (const s of this.sessions.values()) if (s.foreign) this.sessions.delete(s.id);
  }

  liveRuns(): SimRun[] {
    return [...this.runs.values()];
  }

  liveSessions(): SimSession[] {
    return [...this.sessions.values()];
  }

  liveProtocols(): SimProtocol[] {
    return [...this.protocols.values()];
  }

  /** Every run ever created (deleted ones included). */
  readonly allRuns: SimRun[] = [];
  readonly allSessions: SimSession[] = [];

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  // ---- HTTP plumbing ---------------------------------------------------------------------------

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 50 * 1024 * 1024) chunks.push(c);
    });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://robot');
      const method = (req.method ?? 'GET').toUpperCase();
      const entry: OtRequestLogEntry = { method, path: url.pathname, status: 0, time: Date.now(), headers: req.headers, contentType: req.headers['content-type'], query: Object.fromEntries(url.searchParams) };
      this.requestLog.push(entry);
      recordBody(entry, Buffer.concat(chunks));
      if (Date.now() < this.offlineUntil) {
        req.socket.destroy();
        return;
      }
      const dropIdx = this.dropQueue.findIndex((d) => (!d.method || d.method.toUpperCase() === method) && (!d.path || d.path.test(url.pathname)));
      const drop = dropIdx >= 0 ? this.dropQueue.splice(dropIdx, 1)[0] : undefined;
      let status: number;
      let body: unknown;
      try {
        if (size > 50 * 1024 * 1024) throw v8err(413, 'RequestTooLarge', 'Request Too Large', 'body too large');
        const out = this.route(method, url, req.headers, Buffer.concat(chunks));
        status = out.status;
        body = out.body;
      } catch (err) {
        if (err instanceof SimHttpError) {
          status = err.status;
          body = err.body;
        } else {
          status = 500;
          body = { errors: [{ id: 'UnexpectedError', title: 'Unexpected Internal Error', detail: String((err as Error).message), errorCode: '4000' }] };
        }
      }
      entry.status = drop ? 0 : status;
      if (drop) {
        req.socket.destroy();
        return;
      }
      if (body instanceof RawBody) {
        res.writeHead(status, { 'Content-Type': body.contentType, 'Content-Length': body.data.length, 'Content-Disposition': `attachment; filename="${body.fileName}"`, 'Opentrons-Version': '2' });
        res.end(body.data);
        return;
      }
      const text = JSON.stringify(body);
      const d = this.answerDelay;
      if (d && d.method === method && (d.path.lastIndex = 0, d.path.test(url.pathname))) {
        setTimeout(() => {
          if (res.destroyed || this.closed) return;
          res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Opentrons-Version': '2', 'Opentrons-Min-Version': '2' });
          res.end(text);
        }, d.ms);
        return;
      }
      res.writeHead(status, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(text),
        'Opentrons-Version': '2',
        'Opentrons-Min-Version': '2',
        'Access-Control-Allow-Origin': '*',
      });
      res.end(text);
    });
  }

  private route(method: string, url: URL, headers: http.IncomingHttpHeaders, raw: Buffer): { status: number; body: unknown } {
    const p = url.pathname.replace(/\/+$/, '') || '/';
    const v = headers['opentrons-version'];
    if (p !== '/openapi.json') {
      if (v === undefined) {
        throw new SimHttpError(422, { errors: [{ id: 'InvalidRequest', title: 'Invalid Request', detail: 'field required', source: { header: 'opentrons-version' } }] });
      }
      if (v !== '*' && !(Number(v) >= 2)) {
        throw new SimHttpError(400, { errors: [{ id: 'OutdatedAPIVersion', title: 'Requested HTTP API version no longer supported', detail: `HTTP API version ${v} is no longer supported. Please upgrade your Opentrons App or other HTTP API client.` }] });
      }
    }
    const json = (): any => {
      try {
        return raw.length ? JSON.parse(raw.toString('utf8')) : undefined;
      } catch {
        throw new SimHttpError(422, { errors: [{ id: 'InvalidRequest', title: 'Invalid Request', detail: 'invalid JSON body' }] });
      }
    };
    if (method === 'GET' && p === '/health') return { status: 200, body: this.health() };
    return this.generation === 'runs' ? this.routeRuns(method, p, url, headers, raw, json) : this.routeSessions(method, p, headers, raw, json);
  }

  private health(): Record<string, unknown> {
    const h: Record<string, unknown> = {
      name: this.o.robotName,
      api_version: this.o.apiVersion,
      fw_version: 'Virtual Smoothie',
      board_revision: '2.1',
      logs: ['/logs/serial.log', '/logs/api.log', '/logs/server.log'],
      system_version: '0.0.0',
      maximum_protocol_api_version: this.generation === 'runs' ? [2, 20] : [2, 11],
      minimum_protocol_api_version: [2, 0],
      links: { apiLog: '/logs/api.log', serialLog: '/logs/serial.log', serverLog: '/logs/server.log', apiSpec: '/openapi.json', systemTime: '/system/time' },
    };
    if (this.generation === 'runs') {
      h.robot_model = 'OT-2 Standard';
      h.robot_serial = 'simulator';
    }
    return h;
  }

  // ---- protocol parsing ------------------------------------------------------------------------

  private makeProtocol(id: string, files: StoredFile[], rtp?: Record<string, unknown>, key?: string, rtpFiles?: Record<string, string>): SimProtocol {
    const main = files[0];
    const text = main.data.toString('utf8');
    const steps = Math.max(1, Number(/#\s*sim-steps:\s*(\d+)/.exec(text)?.[1] ?? 4));
    const declared = declaredParameters(text);
    const hash = crypto
      .createHash('sha256')
      .update(JSON.stringify(files.map((f) => [f.name, crypto.createHash('sha256').update(f.data).digest('hex')])))
      .update(JSON.stringify(rtp ?? {}))
      .update(JSON.stringify(rtpFiles ?? {}))
      .update(key ?? '')
      .digest('hex');
    const analysis: SimAnalysis = { id: uuid(), status: 'pending', values: rtp, files: rtpFiles, errors: [], parameters: [], steps };
    const p: SimProtocol = {
      id,
      createdAt: now(),
      files,
      runTimeParameterValues: rtp,
      runTimeParameterFiles: rtpFiles,
      key,
      text,
      steps,
      declared,
      analyses: [analysis],
      analysisError: text.includes('SIM_ANALYSIS_ERROR'),
      runError: text.includes('SIM_RUN_ERROR'),
      selfPause: text.includes('SIM_PAUSE'),
      analysis,
      hash,
    };
    analysis.parameters = this.parametersFor(p, rtp, rtpFiles);
    return p;
  }

  /** Steps of a run: `# sim-steps: csv` counts the data rows of the CSV parameter's file. */
  private stepsFor(p: SimProtocol, files?: Record<string, string>): number {
    if (!/#\s*sim-steps:\s*csv/.test(p.text)) return p.steps;
    const id = Object.values(files ?? {})[0];
    const f = id ? this.dataFiles.get(id) : undefined;
    if (!f) return p.steps;
    return Math.max(1, f.data.toString('utf8').split(/\r?\n/).filter((l) => l.trim()).length - 1);
  }

  /** The parameters as listed with these values: the declared ones, or (none declared) the values as sent. */
  private parametersFor(p: SimProtocol, values?: Record<string, unknown>, files?: Record<string, string>): Array<Record<string, unknown>> {
    if (!p.declared.length) return this.rtpView(values);
    return p.declared.map((d) => {
      const fid = files?.[d.variableName];
      const f = fid ? this.dataFiles.get(fid) : undefined;
      return parameterView(d, values?.[d.variableName], f ? { id: f.id, name: f.name } : undefined);
    });
  }

  /**
   * What the robot says about these values for a protocol that declares parameters: a key it does
   * not declare (ParameterDefinitionError), a value it refuses (ParameterValueError), a CSV
   * parameter without a file (result parameter-value-required, error 4010). [emu v8.1.0, §2.9]
   */
  private parameterCheck(p: SimProtocol, values?: Record<string, unknown>, files?: Record<string, string>): { kind: 'ok' } | { kind: 'not-ok' | 'required'; errorType: string; detail: string; errorCode: string } {
    if (!p.declared.length) return { kind: 'ok' };
    for (const k of [...Object.keys(values ?? {}), ...Object.keys(files ?? {})]) {
      if (!p.declared.some((d) => d.variableName === k)) return { kind: 'not-ok', errorType: 'ParameterDefinitionError', detail: `Parameter ${k} is not defined as a parameter for this protocol.`, errorCode: '4000' };
    }
    for (const [k, v] of Object.entries(values ?? {})) {
      const problem = valueProblem(p.declared.find((d) => d.variableName === k)!, v);
      if (problem) return { kind: 'not-ok', errorType: 'ParameterValueError', detail: problem, errorCode: '4000' };
    }
    for (const [k] of Object.entries(files ?? {})) {
      if (p.declared.find((d) => d.variableName === k)!.kind !== 'csv_file') return { kind: 'not-ok', errorType: 'ParameterValueError', detail: `Parameter ${k} is not a CSV file parameter.`, errorCode: '4000' };
    }
    const missing = p.declared.find((d) => d.kind === 'csv_file' && !files?.[d.variableName]);
    if (missing) return { kind: 'required', errorType: 'RuntimeParameterRequiredError', detail: `A value for the CSV parameter ${missing.variableName} is required.`, errorCode: '4010' };
    return { kind: 'ok' };
  }

  /** Completes an analysis after analysisMs, as the robot's analyzer would. */
  private completeLater(p: SimProtocol, a: SimAnalysis): void {
    this.later(this.o.analysisMs, () => {
      a.status = 'completed';
      const check = this.parameterCheck(p, a.values, a.files);
      if (p.analysisError) {
        a.result = 'not-ok';
        a.errors = [{ id: uuid(), createdAt: now(), isDefined: false, errorType: 'ExceptionInProtocolError', errorCode: '4000', detail: 'RuntimeError [line 3]: SIM_ANALYSIS_ERROR raised while analysing', errorInfo: {}, wrappedErrors: [] }];
      } else if (check.kind !== 'ok') {
        a.result = check.kind === 'required' ? 'parameter-value-required' : 'not-ok';
        a.errors = [{ id: uuid(), createdAt: now(), isDefined: check.kind === 'required', errorType: check.errorType, errorCode: check.errorCode, detail: check.detail, errorInfo: {}, wrappedErrors: [] }];
        // UNCONFIRMED whether a refused definition/value still lists the parameters: listed as none.
        if (check.kind === 'not-ok') a.parameters = [];
      } else a.result = 'ok';
      a.steps = this.stepsFor(p, a.files);
    });
  }

  private metadata(p: SimProtocol): Record<string, unknown> {
    const name = /['"]protocolName['"]\s*:\s*['"]([^'"]+)['"]/.exec(p.text)?.[1];
    return { apiLevel: /['"]apiLevel['"]\s*:\s*['"]([\d.]+)['"]/.exec(p.text)?.[1] ?? '2.18', ...(name ? { protocolName: name } : {}) };
  }

  // ==== runs API (5.x – 8.x) ===================================================================

  private routeRuns(method: string, p: string, url: URL, headers: http.IncomingHttpHeaders, raw: Buffer, json: () => any): { status: number; body: unknown } {
    let m: RegExpExecArray | null;
    if (p === '/protocols' && method === 'POST') return this.postProtocolRuns(headers, raw);
    if (p === '/protocols' && method === 'GET') return { status: 200, body: { data: [...this.protocols.values()].map((x) => this.protocolView(x)), meta: { cursor: 0, totalLength: this.protocols.size } } };
    if ((m = /^\/protocols\/([^/]+)$/.exec(p))) {
      const proto = this.protocolOr404(m[1]);
      if (method === 'GET') {
        const referencingRuns = [...this.runs.values()].filter((r) => r.protocolId === proto.id).map((r) => ({ id: r.id, href: `/runs/${r.id}` }));
        return { status: 200, body: { data: this.protocolView(proto), links: { referencingRuns } } };
      }
      if (method === 'DELETE') {
        if ([...this.runs.values()].some((r) => r.protocolId === proto.id)) {
          throw v8err(409, 'ProtocolUsedByRun', 'Protocol Used by Run', `Protocol ${proto.id} is used by a run and cannot be deleted.`);
        }
        this.protocols.delete(proto.id);
        proto.deleted = true;
        return { status: 200, body: {} };
      }
    }
    if ((m = /^\/protocols\/([^/]+)\/analyses$/.exec(p)) && method === 'GET') {
      const proto = this.protocolOr404(m[1]);
      return { status: 200, body: { data: proto.analyses.map((a) => this.analysisView(proto, a)), meta: { cursor: 0, totalLength: proto.analyses.length } } };
    }
    if ((m = /^\/protocols\/([^/]+)\/analyses$/.exec(p)) && method === 'POST') return this.postAnalysis(this.protocolOr404(m[1]), json());
    if ((m = /^\/protocols\/([^/]+)\/dataFiles$/.exec(p)) && method === 'GET') {
      const proto = this.protocolOr404(m[1]);
      const ids = new Set(proto.analyses.flatMap((a) => Object.values(a.files ?? {})));
      for (const r of this.runs.values()) if (r.protocolId === proto.id) for (const id of Object.values(r.runTimeParameterFiles ?? {})) ids.add(id);
      const files = [...ids].map((id) => this.dataFiles.get(id)).filter((f): f is SimDataFile => !!f);
      return { status: 200, body: { data: files.map((f) => this.dataFileView(f)), meta: { cursor: 0, totalLength: files.length } } };
    }
    if (p === '/dataFiles' && method === 'POST') return this.postDataFile(headers, raw);
    if (p === '/dataFiles' && method === 'GET') {
      // The v8.1.0 spec declares SimpleMultiBody[str] here, but the server builds the body with
      // DataFile objects (construct() skips validation): the simulator answers as the server does.
      const all = [...this.dataFiles.values()];
      return { status: 200, body: { data: all.map((f) => this.dataFileView(f)), meta: { cursor: 0, totalLength: all.length } } };
    }
    if ((m = /^\/dataFiles\/([^/]+)$/.exec(p))) {
      if (method === 'GET') return { status: 200, body: { data: this.dataFileView(this.dataFileOr404(m[1])) } };
      if (method === 'DELETE') {
        if (!this.deletesDataFiles) throw new SimHttpError(405, { detail: 'Method Not Allowed' });
        const f = this.dataFileOr404(m[1]);
        this.dataFiles.delete(f.id);
        return { status: 200, body: {} };
      }
    }
    if ((m = /^\/dataFiles\/([^/]+)\/download$/.exec(p)) && method === 'GET') {
      const f = this.dataFileOr404(m[1]);
      return { status: 200, body: new RawBody(f.data, 'text/csv', f.name) };
    }
    if (p === '/runs' && method === 'GET') {
      const all = [...this.runs.values()];
      const n = Number(url.searchParams.get('pageLength') ?? all.length);
      const page = all.slice(Math.max(0, all.length - n));
      const cur = all.find((r) => r.current);
      return { status: 200, body: { data: page.map((r) => this.runView(r)), links: cur ? { current: { href: `/runs/${cur.id}` } } : {}, meta: { cursor: Math.max(0, all.length - n), totalLength: all.length } } };
    }
    if (p === '/runs' && method === 'POST') return this.postRun(json());
    if ((m = /^\/runs\/([^/]+)$/.exec(p))) {
      const run = this.runOr404(m[1]);
      if (method === 'GET') return { status: 200, body: { data: this.runView(run) } };
      if (method === 'DELETE') {
        if (!['idle', 'stopped', 'failed', 'succeeded'].includes(run.status)) {
          throw v8err(409, 'RunNotIdle', 'Run Not Idle', 'Run is currently active. Allow the run to finish or stop it with a `stop` action before attempting to delete it.', '4001');
        }
        this.runs.delete(run.id);
        run.deleted = true;
        return { status: 200, body: {} };
      }
      if (method === 'PATCH') {
        const cur = json()?.data?.current;
        if (cur === false) run.current = false;
        return { status: 200, body: { data: this.runView(run) } };
      }
    }
    if ((m = /^\/runs\/([^/]+)\/actions$/.exec(p)) && method === 'POST') return this.postAction(this.runOr404(m[1]), json());
    if ((m = /^\/runs\/([^/]+)\/commands$/.exec(p)) && method === 'GET') {
      const run = this.runOr404(m[1]);
      // A Python protocol's commands are added as they run: totalLength counts those so far, not
      // the whole protocol (that is the analysis's command count).
      const total = run.status === 'idle' ? 0 : Math.min(run.commands.length, run.step + 1);
      const pageLength = Number(url.searchParams.get('pageLength') ?? 20);
      const curIdx = Math.max(0, Math.min(total - 1, run.step));
      const cursorParam = url.searchParams.get('cursor');
      const cursor = cursorParam !== null ? Number(cursorParam) : Math.max(0, curIdx - pageLength + 1);
      const data = run.commands.slice(0, total).slice(cursor, cursor + pageLength);
      const current = total ? run.commands[curIdx] : undefined;
      const links = current ? { current: { href: `/runs/${run.id}/commands/${current.id}`, meta: { runId: run.id, commandId: current.id, index: curIdx, key: current.key, createdAt: current.createdAt } } } : {};
      return { status: 200, body: { data, meta: { cursor, totalLength: total }, links } };
    }
    if (method === 'GET' && p === '/settings') return { status: 200, body: { settings: [], links: {} } };
    throw v8err(404, 'BadRequest', 'Bad Request', 'Not Found');
  }

  private postProtocolRuns(headers: http.IncomingHttpHeaders, raw: Buffer): { status: number; body: unknown } {
    const form = parseMultipart(headers['content-type'], raw);
    const files = form.files.filter((f) => f.field === 'files');
    if (!files.length) {
      throw new SimHttpError(422, { errors: [{ id: 'InvalidRequest', title: 'Invalid Request', detail: 'field required', source: { pointer: '/files' }, errorCode: '4000' }] });
    }
    const mains = files.filter((f) => /\.py$/i.test(f.name) || (/\.json$/i.test(f.name) && /"schemaVersion"\s*:\s*[3-8]/.test(f.data.toString('utf8')) && /"commands"/.test(f.data.toString('utf8'))));
    for (const f of files) {
      if (!/\.(py|json|csv|txt)$/i.test(f.name)) throw v8err(422, 'ProtocolFilesInvalid', 'Protocol File(s) Invalid', `${f.name} has an unrecognized file extension.`, '4000');
    }
    if (mains.length !== 1) throw v8err(422, 'ProtocolFilesInvalid', 'Protocol File(s) Invalid', 'Could not pick single main file from ' + files.map((f) => f.name).join(', '), '4000');
    // main first, then the rest in upload order
    const ordered = [mains[0], ...files.filter((f) => f !== mains[0])];
    for (const f of ordered) f.role = f === mains[0] ? 'main' : /\.json$/i.test(f.name) ? 'labware' : 'data';
    let rtp: Record<string, unknown> | undefined;
    const rtpText = form.fields.runTimeParameterValues;
    if (rtpText !== undefined) {
      try {
        rtp = JSON.parse(rtpText);
      } catch {
        throw new SimHttpError(422, { errors: [{ id: 'InvalidRequest', title: 'Invalid Request', detail: 'runTimeParameterValues is not a JSON object', source: { pointer: '/runTimeParameterValues' } }] });
      }
    }
    const rtpFiles = this.fileIdsField(form.fields.runTimeParameterFiles, '/runTimeParameterFiles');
    const candidate = this.makeProtocol(uuid(), ordered, rtp, form.fields.key, rtpFiles);
    const existing = [...this.protocols.values()].find((x) => x.hash === candidate.hash);
    if (existing) return { status: 200, body: { data: this.protocolView(existing) } };
    this.protocols.set(candidate.id, candidate);
    this.uploads.push(candidate);
    this.completeLater(candidate, candidate.analysis);
    return { status: 201, body: { data: this.protocolView(candidate) } };
  }

  /** `runTimeParameterFiles` (a JSON string form field, or an object): every id must name a stored data file (422 FileIdNotFound). */
  private fileIdsField(raw: unknown, pointer: string): Record<string, string> | undefined {
    if (raw === undefined) return undefined;
    let v: unknown = raw;
    if (typeof raw === 'string') {
      try {
        v = JSON.parse(raw);
      } catch {
        v = undefined;
      }
    }
    if (!v || typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) {
      throw new SimHttpError(422, { errors: [{ id: 'InvalidRequest', title: 'Invalid Request', detail: 'runTimeParameterFiles must map parameter names to file ids', source: { pointer } }] });
    }
    for (const id of Object.values(v as Record<string, string>)) {
      if (!this.dataFiles.has(id)) throw v8err(422, 'FileIdNotFound', 'Specified file id not found on the robot server', `Data file ${id} was not found.`, '4000');
    }
    return v as Record<string, string>;
  }

  // ---- data files (8.0+) -------------------------------------------------------------------------

  private dataFileView(f: SimDataFile): Record<string, unknown> {
    return { id: f.id, name: f.name, createdAt: f.createdAt };
  }

  private postDataFile(headers: http.IncomingHttpHeaders, raw: Buffer): { status: number; body: unknown } {
    const form = parseMultipart(headers['content-type'], raw);
    const file = form.files.find((f) => f.field === 'file');
    const filePath = form.fields.filePath;
    if (file && filePath !== undefined) throw v8err(422, 'MultipleDataFileSources', 'Multiple sources found for data files', 'Can accept either a file or a file path, not both.', '4000');
    if (!file && filePath === undefined) throw v8err(422, 'NoDataFileSourceProvided', 'No data file source provided', 'Data file path or file must be provided.', '4000');
    // The simulator has no robot file system: a filePath names a file it was given as robotFiles.
    const name = file ? file.name : filePath!.split('/').pop()!;
    const data = file ? file.data : this.robotFiles.get(filePath!);
    if (!/\.csv$/i.test(name)) throw v8err(422, 'UnexpectedFileFormat', 'Unexpected file format', `${name} is an unsupported file format. Expected a .csv file.`, '4000');
    if (!data) throw v8err(422, 'FileNotFound', 'Specified file path not found on the robot', `File ${filePath} was not found.`, '4000');
    const hash = crypto.createHash('sha256').update(data).digest('hex');
    const same = [...this.dataFiles.values()].find((f) => f.hash === hash);
    if (same) return { status: 200, body: { data: this.dataFileView(same) } };
    const stored: SimDataFile = { id: uuid(), name, createdAt: now(), data: Buffer.from(data), hash };
    this.dataFiles.set(stored.id, stored);
    this.dataFilesEver.push(stored);
    // The server deletes the oldest files beyond 50 (§2.9).
    while (this.dataFiles.size > 50) this.dataFiles.delete(this.dataFiles.keys().next().value as string);
    return { status: 201, body: { data: this.dataFileView(stored) } };
  }

  private dataFileOr404(id: string): SimDataFile {
    const f = this.dataFiles.get(id);
    if (!f) throw v8err(404, 'FileIdNotFound', 'Specified file id not found on the robot server', `Data file ${id} was not found.`, '4000');
    return f;
  }

  /** Robot software newer than 8.1 (DELETE /dataFiles/{id} exists there; UNCONFIRMED from which version). */
  private get deletesDataFiles(): boolean {
    const [maj, min] = String(this.o.apiVersion).split('.').map(Number);
    return maj > 8 || (maj === 8 && min >= 2);
  }

  private protocolView(p: SimProtocol): Record<string, unknown> {
    return {
      id: p.id,
      createdAt: p.createdAt,
      files: p.files.map((f) => ({ name: f.name, role: f.role })),
      protocolType: /\.py$/i.test(p.files[0].name) ? 'python' : 'json',
      robotType: 'OT-2 Standard',
      metadata: this.metadata(p),
      analyses: [],
      analysisSummaries: p.analyses.map((a) => ({ id: a.id, status: a.status, runTimeParameters: a.parameters })),
      ...(p.key !== undefined ? { key: p.key } : {}),
      protocolKind: 'standard',
    };
  }

  private rtpView(values?: Record<string, unknown>): Array<Record<string, unknown>> {
    return Object.entries(values ?? {}).map(([k, v]) => ({
      variableName: k,
      displayName: k,
      type: typeof v === 'boolean' ? 'bool' : typeof v === 'number' ? (Number.isInteger(v) ? 'int' : 'float') : 'str',
      value: v,
      default: v,
      ...(typeof v === 'number' ? { min: Math.min(0, v), max: Math.max(1000, v) } : {}),
      ...(typeof v === 'string' ? { choices: [{ displayName: String(v), value: v }] } : {}),
    }));
  }

  private analysisView(p: SimProtocol, a: SimAnalysis): Record<string, unknown> {
    if (a.status === 'pending') return { id: a.id, status: 'pending', runTimeParameters: a.parameters };
    return {
      id: a.id,
      status: 'completed',
      result: a.result,
      robotType: 'OT-2 Standard',
      runTimeParameters: a.parameters,
      commands: a.result === 'ok' ? this.commandsFor(a.steps, 'succeeded') : [],
      labware: [],
      pipettes: [],
      modules: [],
      liquids: [],
      errors: a.errors,
    };
  }

  /** POST /protocols/{id}/analyses: a new analysis with these values (201), or the newest one when it used the same (200). */
  private postAnalysis(p: SimProtocol, body: any): { status: number; body: unknown } {
    const d = body?.data ?? {};
    const values = d.runTimeParameterValues && typeof d.runTimeParameterValues === 'object' ? (d.runTimeParameterValues as Record<string, unknown>) : undefined;
    const files = this.fileIdsField(d.runTimeParameterFiles, '/data/runTimeParameterFiles');
    const last = p.analyses[p.analyses.length - 1];
    // The robot compares the resolved values (defaults filled in) with those of its last analysis.
    const resolved = (v?: Record<string, unknown>, f?: Record<string, string>) => JSON.stringify(p.declared.length ? this.parametersFor(p, v, f) : [v ?? {}, f ?? {}]);
    const same = resolved(values, files) === resolved(last.values, last.files);
    const summaries = () => p.analyses.map((a) => ({ id: a.id, status: a.status, runTimeParameters: a.parameters }));
    if (same && d.forceReAnalyze !== true) return { status: 200, body: { data: summaries(), meta: { cursor: 0, totalLength: p.analyses.length } } };
    const a: SimAnalysis = { id: uuid(), status: 'pending', values, files, errors: [], parameters: this.parametersFor(p, values, files), steps: p.steps };
    p.analyses.push(a);
    p.analysis = a;
    this.completeLater(p, a);
    return { status: 201, body: { data: summaries(), meta: { cursor: 0, totalLength: p.analyses.length } } };
  }

  private commandsFor(steps: number, status: string): Array<Record<string, unknown>> {
    return Array.from({ length: steps }, (_, i) => {
      const t = now();
      return { id: uuid(), key: `step-${i + 1}`, commandType: 'comment', status, intent: 'protocol', params: { message: `Step ${i + 1} of ${steps}` }, createdAt: t, startedAt: t, completedAt: t };
    });
  }

  private newRun(p: SimProtocol | undefined, rtp?: Record<string, unknown>, files?: Record<string, string>, offsets: Array<Record<string, unknown>> = []): SimRun {
    const run: SimRun = {
      id: uuid(),
      createdAt: now(),
      protocolId: p?.id,
      status: 'idle',
      current: true,
      actions: [],
      errors: [],
      runTimeParameterValues: rtp,
      runTimeParameterFiles: files,
      labwareOffsets: offsets.map((o) => ({ id: uuid(), createdAt: now(), definitionUri: o.definitionUri, location: o.location, vector: o.vector })),
      step: 0,
      epoch: 0,
      commands: p ? this.commandsFor(this.stepsFor(p, files ?? p.runTimeParameterFiles), 'queued') : [],
    };
    this.runs.set(run.id, run);
    this.allRuns.push(run);
    return run;
  }

  private postRun(body: any): { status: number; body: unknown } {
    const data = body?.data;
    if (!data || typeof data !== 'object') {
      throw new SimHttpError(422, { errors: [{ id: 'InvalidRequest', title: 'Invalid Request', detail: 'field required', source: { pointer: '/data' } }] });
    }
    const cur = [...this.runs.values()].find((r) => r.current);
    if (cur && !['idle', 'stopped', 'failed', 'succeeded'].includes(cur.status)) {
      throw v8err(409, 'RunAlreadyActive', 'Run Already Active', 'Current run is not idle or stopped.', '4001');
    }
    let proto: SimProtocol | undefined;
    if (data.protocolId !== undefined) {
      proto = this.protocols.get(String(data.protocolId));
      if (!proto) throw v8err(404, 'ProtocolNotFound', 'Protocol Not Found', `Protocol ${data.protocolId} not found.`, '4000');
    }
    const files = this.fileIdsField(data.runTimeParameterFiles, '/data/runTimeParameterFiles');
    const offsets = data.labwareOffsets ?? [];
    if (!Array.isArray(offsets) || offsets.some((o: any) => typeof o?.definitionUri !== 'string' || typeof o?.location?.slotName !== 'string' || !['x', 'y', 'z'].every((k) => typeof o?.vector?.[k] === 'number'))) {
      throw new SimHttpError(422, { errors: [{ id: 'InvalidRequest', title: 'Invalid Request', detail: 'field required', source: { pointer: '/data/labwareOffsets' }, errorCode: '4000' }] });
    }
    let missingFileParam: string | undefined;
    if (proto) {
      const effectiveFiles = files ?? proto.runTimeParameterFiles;
      const check = this.parameterCheck(proto, { ...(proto.runTimeParameterValues ?? {}), ...(data.runTimeParameterValues ?? {}) }, effectiveFiles);
      // A refused value: the 8.1.0 emulator answered 500 UnexpectedError, meta.type ParameterValueError (§2.3).
      if (check.kind === 'not-ok') {
        throw new SimHttpError(500, { errors: [{ id: 'UnexpectedError', title: 'Unexpected Internal Error', detail: check.detail, errorCode: '4000', meta: { type: check.errorType, code: '4000', message: check.detail, detail: {}, wrapping: [] } }] });
      }
      if (check.kind === 'required') missingFileParam = check.detail;
    }
    if (cur?.status === 'idle') cur.status = 'stopped';
    for (const r of this.runs.values()) r.current = false;
    const run = this.newRun(proto, data.runTimeParameterValues, files, offsets);
    run.missingFileParam = missingFileParam;
    return { status: 201, body: { data: this.runView(run) } };
  }

  private runView(r: SimRun): Record<string, unknown> {
    const p = r.protocolId ? this.protocols.get(r.protocolId) ?? this.uploads.find((u) => u.id === r.protocolId) : undefined;
    return {
      id: r.id,
      ok: true,
      createdAt: r.createdAt,
      status: r.status,
      current: r.current,
      actions: r.actions,
      errors: r.errors,
      hasEverEnteredErrorRecovery: false,
      pipettes: [],
      modules: [],
      labware: [],
      liquids: [],
      labwareOffsets: r.labwareOffsets,
      runTimeParameters: p ? this.parametersFor(p, { ...(p.runTimeParameterValues ?? {}), ...(r.runTimeParameterValues ?? {}) }, r.runTimeParameterFiles ?? p.runTimeParameterFiles) : [],
      ...(r.protocolId ? { protocolId: r.protocolId } : {}),
      ...(r.startedAt ? { startedAt: r.startedAt } : {}),
      ...(r.completedAt ? { completedAt: r.completedAt } : {}),
    };
  }

  private postAction(run: SimRun, body: any): { status: number; body: unknown } {
    const type = body?.data?.actionType;
    if (!['play', 'pause', 'stop', 'resume-from-recovery'].includes(type)) {
      throw new SimHttpError(422, {
        errors: [{ id: 'InvalidRequest', title: 'Invalid Request', detail: "value is not a valid enumeration member; permitted: 'play', 'pause', 'stop', 'resume-from-recovery'", source: { pointer: '/data/actionType' }, errorCode: '4000' }],
      });
    }
    const terminal = ['stopped', 'failed', 'succeeded'].includes(run.status);
    const notAllowed = (detail: string) => v8err(409, 'RunActionNotAllowed', 'Run Action Not Allowed', detail, '3000');
    if (terminal || run.status === 'stop-requested' || run.status === 'finishing') throw notAllowed('The run has already stopped.');
    if (!run.current) throw notAllowed('Cannot issue actions to a run that is not the current run.');
    run.epoch++;
    if (type === 'play') {
      // UNCONFIRMED wording; the 409 on play with the door open follows robot-server's RobotDoorOpenError.
      if (this.doorOpen) throw notAllowed('Front door or top window is currently open.');
      if (run.status === 'idle' && run.missingFileParam) {
        run.status = 'running';
        run.startedAt = now();
        run.errors.push({ id: uuid(), createdAt: now(), isDefined: true, errorType: 'RuntimeParameterRequiredError', errorCode: '4010', detail: run.missingFileParam, errorInfo: {}, wrappedErrors: [] });
        this.later(this.o.settleMs, () => this.endRun(run, 'failed'));
      } else if (run.status === 'idle') {
        run.status = 'running';
        run.startedAt = now();
        this.scheduleRunStep(run);
      } else if (run.status === 'paused') {
        run.status = 'running';
        this.scheduleRunStep(run);
      }
    } else if (type === 'pause') {
      if (run.status === 'running') run.status = 'paused';
      else if (run.status !== 'paused') throw notAllowed(`Cannot pause a run that is ${run.status}.`);
    } else if (type === 'stop') {
      run.status = 'stop-requested';
      this.later(this.o.settleMs, () => this.endRun(run, 'stopped'));
    } else {
      throw notAllowed('The run is not awaiting recovery.');
    }
    const action = { id: uuid(), createdAt: now(), actionType: type };
    run.actions.push(action);
    return { status: 201, body: { data: action } };
  }

  private scheduleRunStep(run: SimRun): void {
    const p = run.protocolId ? this.protocols.get(run.protocolId) : undefined;
    const steps = run.commands.length;
    const epoch = run.epoch; // a pause/play in between makes this tick stale
    this.later(this.o.stepMs, () => {
      if (run.status !== 'running' || run.epoch !== epoch || run.deleted) return;
      const cmd = run.commands[run.step];
      if (cmd) cmd.status = 'succeeded';
      run.step++;
      if (p?.runError && run.step >= Math.ceil(steps / 2)) {
        if (cmd) cmd.status = 'failed';
        run.errors.push({ id: uuid(), createdAt: now(), isDefined: false, errorType: 'ExceptionInProtocolError', errorCode: '4000', detail: `RuntimeError [line 7]: SIM_RUN_ERROR raised at step ${run.step}`, errorInfo: {}, wrappedErrors: [] });
        run.status = 'finishing';
        this.later(this.o.settleMs, () => this.endRun(run, 'failed'));
        return;
      }
      if (run.step >= steps) {
        run.status = 'finishing';
        this.later(this.o.settleMs, () => this.endRun(run, 'succeeded'));
        return;
      }
      run.commands[run.step].status = 'running';
      if (p?.selfPause && run.step === 1) {
        run.status = 'paused'; // protocol.pause() in the protocol: a waitForResume command
        run.epoch++;
        return;
      }
      this.scheduleRunStep(run);
    });
  }

  private endRun(run: SimRun, status: 'stopped' | 'failed' | 'succeeded'): void {
    if (['stopped', 'failed', 'succeeded'].includes(run.status)) return;
    run.status = status;
    run.completedAt = now();
    run.endedAtMs = Date.now();
    for (const c of run.commands) if (c.status === 'queued' || c.status === 'running') c.status = status === 'succeeded' ? 'succeeded' : 'failed';
  }

  private protocolOr404(id: string): SimProtocol {
    const p = this.protocols.get(id);
    if (!p) throw v8err(404, 'ProtocolNotFound', 'Protocol Not Found', `Protocol ${id} not found.`, '4000');
    return p;
  }

  private runOr404(id: string): SimRun {
    const r = this.runs.get(id);
    if (!r) throw v8err(404, 'RunNotFound', 'Run Not Found', `Run ${id} was not found.`, '4000');
    return r;
  }

  // ==== sessions API (4.x) =====================================================================

  private routeSessions(method: string, p: string, headers: http.IncomingHttpHeaders, raw: Buffer, json: () => any): { status: number; body: unknown } {
    let m: RegExpExecArray | null;
    const links = (self: string) => ({ self: { href: self }, protocols: { href: '/protocols' }, protocolById: { href: '/protocols/{protocolId}' } });
    if (p === '/settings' && method === 'GET') return { status: 200, body: this.settingsView() };
    if (p === '/settings' && method === 'POST') {
      const b = json();
      if (b?.id === SESSION_FLAG) this.featureFlag = b.value === true;
      else if (typeof b?.id !== 'string') throw new SimHttpError(400, { message: 'Invalid setting' });
      return { status: 200, body: this.settingsView() };
    }
    if (p === '/protocols' && method === 'GET') return { status: 200, body: { data: [...this.protocols.values()].map((x) => this.legacyProtocolView(x)), links: {} } };
    if (p === '/protocols' && method === 'POST') {
      const form = parseMultipart(headers['content-type'], raw);
      const main = form.files.filter((f) => f.field === 'protocolFile');
      if (main.length !== 1) {
        throw new SimHttpError(422, { errors: [{ id: 'InvalidRequest', title: 'Invalid Request', detail: 'field required', source: { pointer: '/protocolFile' } }] });
      }
      const support = form.files.filter((f) => f.field === 'supportFiles');
      const id = main[0].name.replace(/\.[^.]*$/, '');
      if (this.protocols.has(id)) throw v4err(403, 'Resource Exists', `A 'protocol' with id '${id}' already exists`);
      if (this.protocols.size >= 1) throw v4err(403, 'Action Forbidden', 'Upload limit of 1 has been reached. Delete a protocol to make room.');
      const proto = this.makeProtocol(id, [...main, ...support]);
      proto.analysis.status = 'completed';
      proto.analysis.result = proto.analysisError ? 'not-ok' : 'ok';
      this.protocols.set(id, proto);
      this.uploads.push(proto);
      return { status: 201, body: { data: this.legacyProtocolView(proto), links: links(`/protocols/${id}`) } };
    }
    if ((m = /^\/protocols\/([^/]+)$/.exec(p))) {
      const proto = this.protocols.get(m[1]);
      if (!proto) throw v4err(404, 'Resource Not Found', `Resource type 'protocol' with id '${m[1]}' was not found`);
      if (method === 'GET') return { status: 200, body: { data: this.legacyProtocolView(proto), links: links(`/protocols/${proto.id}`) } };
      if (method === 'DELETE') {
        this.protocols.delete(proto.id);
        proto.deleted = true;
        return { status: 200, body: { data: this.legacyProtocolView(proto), links: links(`/protocols/${proto.id}`) } };
      }
    }
    if (p === '/sessions' && method === 'GET') return { status: 200, body: { data: [...this.sessions.values()].map((s) => this.sessionView(s)), links: null } };
    if (p === '/sessions' && method === 'POST') {
      const d = json()?.data;
      if (!d || d.sessionType !== 'protocol' || typeof d.createParams?.protocolId !== 'string') {
        throw new SimHttpError(422, { errors: [{ id: 'InvalidRequest', title: 'Invalid Request', detail: 'field required', source: { pointer: '/data/createParams/protocolId' } }] });
      }
      if (!this.featureFlag) throw v4err(403, 'Action Forbidden', 'HTTP Protocol Session feature is disabled');
      const proto = this.protocols.get(d.createParams.protocolId);
      if (!proto) throw v4err(404, 'Resource Not Found', `Resource type 'protocol' with id '${d.createParams.protocolId}' was not found`);
      const s: SimSession = { id: uuid(), createdAt: now(), protocolId: proto.id, state: 'stopped', events: [], started: false, step: 0, epoch: 0, startRuns: 0 };
      this.sessions.set(s.id, s);
      this.allSessions.push(s);
      this.activeSessionId = s.id;
      this.later(this.o.loadMs, () => {
        if (s.state !== 'stopped' || s.started) return;
        if (proto.analysisError) {
          s.state = 'error';
          this.sessionEvent(s, 'protocol', 'exception', { text: 'simulation failed' }, 'RuntimeError [line 3]: SIM_ANALYSIS_ERROR raised while simulating');
        } else s.state = 'loaded';
      });
      return { status: 201, body: { data: this.sessionView(s), links: this.sessionLinks(s.id) } };
    }
    if ((m = /^\/sessions\/([^/]+)$/.exec(p))) {
      const s = this.sessions.get(m[1]);
      if (!s) throw v4err(404, 'Resource Not Found', `Resource type 'session' with id '${m[1]}' was not found`);
      if (method === 'GET') return { status: 200, body: { data: this.sessionView(s), links: this.sessionLinks(s.id) } };
      if (method === 'DELETE') {
        this.sessions.delete(s.id);
        s.deleted = true;
        if (s.state === 'running' || s.state === 'paused') s.state = 'stopped';
        if (this.activeSessionId === s.id) this.activeSessionId = undefined;
        return { status: 200, body: { data: this.sessionView(s), links: { sessions: { href: '/sessions' } } } };
      }
    }
    if ((m = /^\/sessions\/([^/]+)\/commands\/execute$/.exec(p)) && method === 'POST') {
      const s = this.sessions.get(m[1]);
      if (!s) throw v4err(404, 'Resource Not Found', `Resource type 'session' with id '${m[1]}' was not found`);
      const command = json()?.data?.command;
      const allowed = ['protocol.startRun', 'protocol.startSimulate', 'protocol.cancel', 'protocol.pause', 'protocol.resume'];
      if (!allowed.includes(command)) {
        throw new SimHttpError(422, { errors: [{ id: 'InvalidRequest', title: 'Invalid Request', detail: `unexpected value; permitted: ${allowed.map((a) => `'${a}'`).join(', ')}`, source: { pointer: '/data/command' } }] });
      }
      if (this.activeSessionId !== s.id) throw v4err(403, 'Action Forbidden', `Session '${s.id}' is not active. Only the active session can execute commands`);
      this.sessionCommand(s, command);
      const t = now();
      return { status: 200, body: { data: { id: uuid(), command, data: {}, status: 'executed', createdAt: t, startedAt: t, completedAt: t, result: null }, links: this.sessionLinks(s.id) } };
    }
    if (p === '/runs' || p.startsWith('/runs/')) throw v4err(404, 'Bad Request', 'Not Found', 'BadRequest');
    throw v4err(404, 'Bad Request', 'Not Found', 'BadRequest');
  }

  private settingsView(): Record<string, unknown> {
    return {
      settings: [
        {
          id: SESSION_FLAG,
          old_id: SESSION_FLAG, // required string in the v4.7.0 spec; no older name is known
          title: 'Enable experimental HTTP protocol sessions',
          description: 'Do not enable. This is an Opentrons developer-only setting. Activating this will disable protocol running from the Opentrons application.',
          restart_required: true,
          value: this.featureFlag,
        },
      ],
      links: { restart: '/server/restart' },
    };
  }

  private sessionLinks(id: string): Record<string, unknown> {
    return {
      self: { href: `/sessions/${id}`, meta: null },
      commandExecute: { href: `/sessions/${id}/commands/execute`, meta: null },
      sessions: { href: '/sessions', meta: null },
      sessionById: { href: '/sessions/{sessionId}', meta: null },
    };
  }

  private sessionView(s: SimSession): Record<string, unknown> {
    return {
      id: s.id,
      createdAt: s.createdAt,
      details: { protocolId: s.protocolId, currentState: s.state, events: s.events },
      sessionType: 'protocol',
      createParams: { protocolId: s.protocolId },
    };
  }

  private legacyProtocolView(p: SimProtocol): Record<string, unknown> {
    return {
      id: p.id,
      protocolFile: { basename: p.files[0].name },
      supportFiles: p.files.slice(1).map((f) => ({ basename: f.name })),
      lastModifiedAt: p.createdAt,
      createdAt: p.createdAt,
      requiredEquipment: { pipettes: [], labware: [], modules: [] },
      metadata: { name: this.metadata(p).protocolName ?? null, author: null, apiLevel: this.metadata(p).apiLevel },
      errors: p.analysisError ? [{ type: 'ExceptionInProtocolError', description: 'SIM_ANALYSIS_ERROR raised while analysing', lineNumber: 3 }] : [],
    };
  }

  private sessionEvent(s: SimSession, source: 'protocol' | 'sessionCommand', event: string, params?: Record<string, unknown>, result?: string): true {
    s.events.push({ source, event, timestamp: now(), commandId: uuid(), params: params ?? null, result: result ?? null });
    return true;
  }

  private sessionCommand(s: SimSession, command: string): void {
    const map: Record<string, string[]> = {
      loaded: ['protocol.startRun', 'protocol.startSimulate'],
      running: ['protocol.pause', 'protocol.cancel'],
      paused: ['protocol.resume', 'protocol.cancel'],
      finished: ['protocol.startRun', 'protocol.startSimulate'],
    };
    const ok = map[String(s.state)] ?? [];
    const enumName = { 'protocol.startRun': 'start_run', 'protocol.startSimulate': 'start_simulate', 'protocol.cancel': 'cancel', 'protocol.pause': 'pause', 'protocol.resume': 'resume' }[command];
    if (!ok.includes(command)) throw v4err(403, 'Action Forbidden', `Can't execute 'ProtocolCommand.${enumName}' during state '${s.state}'`);
    if (command === 'protocol.startRun' && this.doorOpen) {
      // UNCONFIRMED: how 4.x answers a start with the door open; a 403 naming the door is assumed.
      throw v4err(403, 'Action Forbidden', 'Robot door is open; close it to start the protocol');
    }
    this.sessionEvent(s, 'sessionCommand', command);
    s.epoch++;
    const proto = this.protocols.get(s.protocolId) ?? this.uploads.find((u) => u.id === s.protocolId);
    if (command === 'protocol.startRun') {
      s.started = true;
      s.startRuns++;
      s.step = 0;
      s.state = 'running';
      this.scheduleSessionStep(s, proto);
    } else if (command === 'protocol.pause') s.state = 'paused';
    else if (command === 'protocol.resume') {
      s.state = 'running';
      this.scheduleSessionStep(s, proto);
    } else if (command === 'protocol.cancel') {
      s.state = 'stopped';
      s.endedAtMs = Date.now();
    }
  }

  private scheduleSessionStep(s: SimSession, p: SimProtocol | undefined): void {
    const steps = p?.steps ?? 4;
    const epoch = s.epoch;
    if (s.step < steps) this.sessionEvent(s, 'protocol', 'command.COMMENT.start', { text: `Step ${s.step + 1} of ${steps}` });
    this.later(this.o.stepMs, () => {
      if (s.state !== 'running' || s.epoch !== epoch || s.deleted) return;
      this.sessionEvent(s, 'protocol', 'command.COMMENT.end', { text: `Step ${s.step + 1} of ${steps}` });
      s.step++;
      if (p?.runError && s.step >= Math.ceil(steps / 2)) {
        this.sessionEvent(s, 'protocol', 'exception', { text: 'protocol raised' }, `RuntimeError [line 7]: SIM_RUN_ERROR raised at step ${s.step}`);
        s.state = 'error';
        s.endedAtMs = Date.now();
        return;
      }
      if (s.step >= steps) {
        s.state = 'finished';
        s.endedAtMs = Date.now();
        return;
      }
      if (p?.selfPause && s.step === 1) {
        this.sessionEvent(s, 'sessionCommand', 'protocol.pause', { reason: 'protocol.pause()' });
        s.state = 'paused';
        s.epoch++;
        return;
      }
      this.scheduleSessionStep(s, p);
    });
  }
}

/** A small multipart/form-data parser (whole body in memory; the simulator's bodies are small). */
export function parseMultipart(contentType: string | undefined, raw: Buffer): { fields: Record<string, string>; files: StoredFile[] } {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType ?? '');
  if (!/^multipart\/form-data/i.test(contentType ?? '') || !boundary) {
    throw new SimHttpError(422, { errors: [{ id: 'InvalidRequest', title: 'Invalid Request', detail: 'expected multipart/form-data' }] });
  }
  const delim = Buffer.from(`--${boundary[1] ?? boundary[2].trim()}`);
  const fields: Record<string, string> = {};
  const files: StoredFile[] = [];
  let pos = raw.indexOf(delim);
  while (pos >= 0) {
    let start = pos + delim.length;
    if (raw.slice(start, start + 2).toString() === '--') break;
    start += 2; // CRLF
    const headEnd = raw.indexOf('\r\n\r\n', start);
    if (headEnd < 0) break;
    const head = raw.slice(start, headEnd).toString('utf8');
    const next = raw.indexOf(delim, headEnd + 4);
    if (next < 0) break;
    const data = raw.slice(headEnd + 4, next - 2); // minus the CRLF before the delimiter
    const name = /name="([^"]*)"/i.exec(head)?.[1] ?? '';
    const filename = /filename="([^"]*)"/i.exec(head)?.[1];
    if (filename !== undefined) files.push({ name: filename, field: name, data: Buffer.from(data) });
    else fields[name] = data.toString('utf8');
    pos = next;
  }
  return { fields, files };
}

/** Keeps what a request carried, for contract checks of the client's requests. */
function recordBody(entry: OtRequestLogEntry, raw: Buffer): void {
  if (!raw.length) return;
  try {
    if (/json/i.test(entry.contentType ?? '')) entry.json = JSON.parse(raw.toString('utf8'));
    else if (/^multipart\/form-data/i.test(entry.contentType ?? '')) {
      const f = parseMultipart(entry.contentType, raw);
      entry.form = { fields: f.fields, files: f.files.map((x) => ({ field: x.field, name: x.name })) };
    }
  } catch {
    // an unparsable body is answered (422) by the route; the log keeps no body
  }
}
