// Genie LabOS Public API simulator: a real HTTP server (node:http, no framework) answering the
// Instrument API the way /work/shared/reference/bioaf-genie-api.md §2 describes it: discovery,
// instruments, their actions with typed parameters, and commands that run for a while and end in
// `success` or `failure`, with kill and idempotent deletes, Bearer-token auth, the `{"data": …}`
// envelope, and the same fault injection as the Benchling simulator.
//
// UNCONFIRMED parts of the API (the command endpoints and object, statuses, error bodies, value
// formats) are simulated as the brief describes them; see the README section "Genie LabOS".
//
// How to make a command FAIL (tests and demos): any text value containing "FAIL" (any case) —
// e.g. plate id "FAIL-1" — makes the command end in `failure` with an instrument error.
// Seeded instruments: GENIE_SEED (stable uids).
import { listen, portOf, shutdown } from './http-server';
import * as http from 'node:http';
import * as crypto from 'node:crypto';
// Genie knows the before-handling fault kinds only (its probabilities' other shares are ignored).
import type { BasicFaultKind as FaultKind, BasicFaultSpec as FaultSpec, FaultProbabilities, RequestLogEntry } from './benchling';

export const GENIE_API_PATH = '/public/v1';
export const DEFAULT_GENIE_TOKEN = 'genie_sim_DEMO_TOKEN_not_secret';

export interface GenieSimOptions {
  /** 0 (default) = random free port. */
  port?: number;
  host?: string;
  /** Accepted Bearer tokens. Default [DEFAULT_GENIE_TOKEN]. */
  tokens?: string[];
  /** How long a command without a time parameter runs. Default 1500 ms. */
  commandDurationMs?: number;
  /** Real ms per simulated second for actions with a time parameter (a 15 s shake). Default 100. */
  timeScaleMs?: number;
  faults?: FaultProbabilities;
  /** Wrap responses in `{"data": …}` (documented). Default true; false answers bare bodies. */
  envelope?: boolean;
}

export interface GenieSimParameter {
  id: string;
  name: string;
  type: 'number' | 'string' | 'volume' | 'time' | 'file' | 'json';
  options?: unknown[];
  min?: number;
  max?: number;
}

export interface GenieSimAction {
  action: string;
  parameters: GenieSimParameter[];
}

export interface GenieSimInstrument {
  uid: string;
  name: string;
  type: string;
  model: string;
  status: 'online' | 'offline';
  actions: GenieSimAction[];
}

export type GenieSimCommandStatus = 'running' | 'success' | 'failure';

export interface GenieSimCommand {
  id: string;
  objectId: string;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  payload: { action: string; values: Array<{ parameterId: string; value: unknown }> };
  values: Array<{ parameterId: string; value: unknown }>;
  status: GenieSimCommandStatus;
  output: string | null;
  message: string | null;
  error: string | null;
  results: unknown;
  /** Simulator extra: the command was ended by a kill. */
  killed?: boolean;
}

export interface GenieSimCounters {
  requests: number;
  commandsCreated: number;
  kills: number;
  unauthorized: number;
  faults: Record<FaultKind, number>;
  byStatus: Record<string, number>;
}

const p = (id: string, name: string, type: GenieSimParameter['type'], extra: Partial<GenieSimParameter> = {}): GenieSimParameter => ({
  id,
  name,
  type,
  ...extra,
});

/** Seeded instruments (uids are 24-hex ObjectIds, as in the docs' example). */
export const GENIE_SEED = {
  shaker: '6458048287f19b42eb065089',
  incubator: '6458048287f19b42eb06508a',
  reader: '6458048287f19b42eb06508b',
  labmate: '6458048287f19b42eb06508c',
};

function seedInstruments(): GenieSimInstrument[] {
  return [
    {
      uid: GENIE_SEED.shaker,
      name: 'Orbital Shaker 1',
      type: 'shaker',
      model: 'Sim OS-3000',
      status: 'online',
      actions: [
        {
          action: 'Shake',
          parameters: [
            p('64580a01aa00000000000001', 'Time', 'time', { min: 1, max: 7200 }),
            p('64580a01aa00000000000002', 'RPM', 'number', { min: 100, max: 3000 }),
            p('64580a01aa00000000000003', 'Mode', 'string', { options: ['orbital', 'linear', 'double orbital'] }),
          ],
        },
        { action: 'Stop', parameters: [] },
      ],
    },
    {
      uid: GENIE_SEED.incubator,
      name: 'Incubator 37',
      type: 'incubator',
      model: 'Sim INC-200',
      status: 'online',
      actions: [
        { action: 'Set Temperature', parameters: [p('64580a02aa00000000000001', 'Temperature', 'number', { min: 4, max: 70 })] },
        { action: 'Set CO2', parameters: [p('64580a02aa00000000000002', 'CO2', 'number', { min: 0, max: 20 })] },
      ],
    },
    {
      uid: GENIE_SEED.reader,
      name: 'Plate Reader',
      type: 'plate reader',
      model: 'Sim PR-96',
      status: 'online',
      actions: [
        {
          action: 'Read Plate',
          parameters: [
            p('64580a03aa00000000000001', 'Plate ID', 'string', { min: 1, max: 32 }),
            p('64580a03aa00000000000002', 'Wavelength', 'number', { options: [405, 450, 562, 600, 660] }),
          ],
        },
      ],
    },
    {
      uid: GENIE_SEED.labmate,
      name: 'LabMate 1',
      type: 'liquid handler',
      model: 'LabMate',
      status: 'online',
      actions: [
        {
          action: 'Dispense',
          parameters: [p('64580a04aa00000000000001', 'Volume', 'volume', { min: 1, max: 1000 }), p('64580a04aa00000000000002', 'Well', 'string', { min: 2, max: 3 })],
        },
        { action: 'Execute Commands', parameters: [p('64580a04aa00000000000003', 'Commands', 'file')] },
        { action: 'Run Method', parameters: [p('64580a04aa00000000000004', 'Settings', 'json')] },
      ],
    },
  ];
}

class SimHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function countersInit(): GenieSimCounters {
  return { requests: 0, commandsCreated: 0, kills: 0, unauthorized: 0, faults: { '429': 0, '500': 0, '503': 0, reset: 0, hang: 0, html: 0 }, byStatus: {} };
}

/** Seconds from a time value as the sim reads it (number, "90", "15s", "2m", "1h"). */
function simSeconds(v: unknown): number {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|hr)?\s*$/i.exec(String(v));
  if (!m) return NaN;
  const unit = (m[2] ?? 's').toLowerCase();
  return Number(m[1]) * (unit === 'ms' ? 0.001 : unit.startsWith('m') && unit !== 'ms' ? 60 : unit.startsWith('h') ? 3600 : 1);
}

export class GenieSim {
  /** 'http://HOST:PORT' once started. */
  url = '';
  /** url + '/public/v1' — the "Public API URL" a user pastes into the tenant config node. */
  apiBase = '';
  readonly tokens: string[];
  readonly requestLog: RequestLogEntry[] = [];
  readonly counters: GenieSimCounters = countersInit();

  private server: http.Server;
  private opts: { port: number; host: string; commandDurationMs: number; timeScaleMs: number; envelope: boolean };
  private answerDelay: { method: string; path: RegExp; ms: number } | null = null;
  private faultProbs: FaultProbabilities;
  private faultQueue: Array<FaultSpec & { remaining: number }> = [];
  private instruments = new Map<string, GenieSimInstrument>();
  private commands = new Map<string, GenieSimCommand>();
  private timers = new Map<string, NodeJS.Timeout>();
  private seq = 0;
  private closed = false;

  constructor(options: GenieSimOptions = {}) {
    this.opts = {
      port: options.port ?? 0,
      host: options.host ?? '127.0.0.1',
      commandDurationMs: options.commandDurationMs ?? 1500,
      timeScaleMs: options.timeScaleMs ?? 100,
      envelope: options.envelope ?? true,
    };
    this.tokens = options.tokens ?? [DEFAULT_GENIE_TOKEN];
    this.faultProbs = { ...(options.faults ?? {}) };
    for (const i of seedInstruments()) this.instruments.set(i.uid, i);
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        if (!res.headersSent && !res.destroyed) this.send(res, 500, { error: `Simulator error: ${String(err?.message)}` });
      });
    });
    this.server.keepAliveTimeout = 5000;
  }

  // ------------------------------------------------------------------------- lifecycle

  async start(): Promise<this> {
    this.url = await listen(this.server, this.opts.host, this.opts.port);
    this.apiBase = this.url + GENIE_API_PATH;
    return this;
  }

  get port(): number {
    return portOf(this.server);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await shutdown(this.server);
  }

  // ------------------------------------------------------------------------- test controls

  /** Queue a deterministic fault (applied before handling; a faulted request changes nothing). */
  injectFault(spec: FaultSpec): void {
    this.faultQueue.push({ ...spec, remaining: spec.times ?? 1 });
  }

  clearFaults(): void {
    this.faultQueue = [];
  }

  setFaultProbabilities(p: FaultProbabilities): void {
    this.faultProbs = { ...p };
  }

  /**
   * Delays the answer of matching requests AFTER they were handled (the state change stays): the
   * window in which a client that gives up, or closes its connections, loses an answer the
   * server already acted on (e.g. a command created while the flow stops). null: no delay.
   */
  setAnswerDelay(d: { method: string; path: RegExp; ms: number } | null): void {
    this.answerDelay = d && { ...d, method: d.method.toUpperCase() };
  }

  setCommandDurationMs(ms: number): void {
    this.opts.commandDurationMs = ms;
  }

  setTimeScaleMs(ms: number): void {
    this.opts.timeScaleMs = ms;
  }

  /** true: `{"data": …}` (documented); false: bare bodies. */
  setEnvelope(on: boolean): void {
    this.opts.envelope = on;
  }

  resetCounters(): void {
    Object.assign(this.counters, countersInit());
  }

  clearRequestLog(): void {
    this.requestLog.length = 0;
  }

  /** Forget every command (between tests). */
  clearCommands(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.commands.clear();
  }

  // ------------------------------------------------------------------------- inspection

  listInstruments(): GenieSimInstrument[] {
    return [...this.instruments.values()].map((i) => structuredClone(i));
  }

  addInstrument(i: GenieSimInstrument): void {
    this.instruments.set(i.uid, structuredClone(i));
  }

  listCommands(): GenieSimCommand[] {
    return [...this.commands.values()].map((c) => structuredClone(c));
  }

  getCommand(id: string): GenieSimCommand | undefined {
    const c = this.commands.get(id);
    return c && structuredClone(c);
  }

  // ------------------------------------------------------------------------- HTTP plumbing

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = Date.now();
    this.counters.requests++;
    const method = (req.method ?? 'GET').toUpperCase();
    const u = new URL(req.url ?? '/', 'http://sim.invalid');
    const pathname = u.pathname;
    const entry: RequestLogEntry = { seq: ++this.seq, method, path: pathname, status: 0, time: started, durationMs: 0 };
    this.requestLog.push(entry);
    res.on('finish', () => {
      entry.status = res.statusCode;
      entry.durationMs = Date.now() - started;
      this.counters.byStatus[String(res.statusCode)] = (this.counters.byStatus[String(res.statusCode)] ?? 0) + 1;
    });

    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const c of req) {
        size += (c as Buffer).length;
        if (size > 5 * 1024 * 1024) {
          this.send(res, 413, { error: 'Request body too large' });
          return;
        }
        chunks.push(c as Buffer);
      }
    } catch {
      return;
    }
    if (this.closed) {
      req.socket.destroy();
      return;
    }

    const fault = this.pickFault(method, pathname);
    if (fault) {
      entry.fault = fault;
      this.counters.faults[fault]++;
      this.applyFault(fault, req, res);
      return;
    }

    try {
      if (pathname !== GENIE_API_PATH && !pathname.startsWith(GENIE_API_PATH + '/')) throw new SimHttpError(404, `Cannot ${method} ${pathname}`);
      this.authenticate(req);
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      if (raw.trim()) {
        try {
          body = JSON.parse(raw);
        } catch {
          throw new SimHttpError(400, 'Request body is not valid JSON');
        }
      }
      const segs = pathname
        .slice(GENIE_API_PATH.length)
        .split('/')
        .filter(Boolean)
        .map((s) => decodeURIComponent(s));
      const { status, data } = this.route(method, segs, body);
      const d = this.answerDelay;
      if (d && d.method === method && (d.path.lastIndex = 0, d.path.test(pathname))) {
        await new Promise((r) => setTimeout(r, d.ms));
        if (res.destroyed || this.closed) return;
      }
      this.send(res, status, this.opts.envelope ? { data } : data);
    } catch (err) {
      if (err instanceof SimHttpError) this.send(res, err.status, { error: err.message });
      else this.send(res, 500, { error: `Simulator error: ${(err as Error).message}` });
    }
  }

  private send(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) });
    res.end(text);
  }

  private authenticate(req: http.IncomingMessage): void {
    const h = String(req.headers.authorization ?? '');
    const m = /^Bearer (.+)$/.exec(h);
    if (!m || !this.tokens.includes(m[1])) {
      this.counters.unauthorized++;
      throw new SimHttpError(401, m ? 'Invalid API token' : 'Missing Bearer token');
    }
  }

  private pickFault(method: string, pathname: string): FaultKind | undefined {
    for (let i = 0; i < this.faultQueue.length; i++) {
      const f = this.faultQueue[i];
      if (f.method && f.method.toUpperCase() !== method) continue;
      if (f.path) {
        f.path.lastIndex = 0;
        if (!f.path.test(pathname)) continue;
      }
      if (--f.remaining <= 0) this.faultQueue.splice(i, 1);
      return f.kind;
    }
    const pr = this.faultProbs;
    const shares: Array<[FaultKind, number | undefined]> = [
      ['429', pr.p429],
      ['500', pr.p500],
      ['503', pr.p503],
      ['reset', pr.pReset],
      ['hang', pr.pHang],
      ['html', pr.pHtml],
    ];
    let r = Math.random();
    for (const [kind, s] of shares) {
      if (!s || s <= 0) continue;
      if (r < s) return kind;
      r -= s;
    }
    return undefined;
  }

  private applyFault(kind: FaultKind, req: http.IncomingMessage, res: http.ServerResponse): void {
    switch (kind) {
      case 'reset':
        req.socket.destroy();
        return;
      case 'hang':
        return; // never answer; close() destroys the socket
      case 'html': {
        const html = '<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>';
        res.writeHead(502, { 'content-type': 'text/html', 'content-length': String(Buffer.byteLength(html)) });
        res.end(html);
        return;
      }
      case '429':
        this.send(res, 429, { error: 'Too many requests (simulated)' });
        return;
      case '500':
        this.send(res, 500, { error: 'Internal server error (simulated)' });
        return;
      case '503':
        this.send(res, 503, { error: 'Service unavailable (simulated)' });
        return;
    }
  }

  // ------------------------------------------------------------------------- routes

  private route(method: string, s: string[], body: unknown): { status: number; data: unknown } {
    const ok = (data: unknown, status = 200) => ({ status, data });
    const allow = (...methods: string[]) => {
      if (!methods.includes(method)) throw new SimHttpError(405, `Method ${method} not allowed`);
    };
    if (s.length === 1 && s[0] === 'discover') {
      allow('GET');
      return ok(
        [
          ['GET', '/instruments/:id?'],
          ['DELETE', '/instruments/:id'],
          ['GET', '/instruments/:id/actions/:cid?'],
          ['GET', '/instruments/:id/commands/:cid?'],
          ['POST', '/instruments/:id/commands'],
          ['POST', '/instruments/:id/commands/:cid/kill'],
          ['DELETE', '/instruments/:id/commands/:cid'],
        ].map(([m, path]) => ({ method: m, path: GENIE_API_PATH + path })),
      );
    }
    if (s[0] !== 'instruments') throw new SimHttpError(404, `Cannot ${method} /${s.join('/')}`);
    if (s.length === 1) {
      allow('GET');
      return ok([...this.instruments.values()].map((i) => this.instrumentJson(i)));
    }
    const uid = s[1];
    if (s.length === 2) {
      allow('GET', 'DELETE');
      if (method === 'DELETE') {
        // Idempotent: success whether or not the instrument existed (documented).
        const i = this.instruments.get(uid);
        if (i) {
          for (const c of this.commands.values()) if (c.objectId === uid && c.status === 'running') this.finish(c, 'failure', { error: 'Instrument deleted', killed: true });
          this.instruments.delete(uid);
        }
        return ok({ uid, deleted: true });
      }
      return ok(this.instrumentJson(this.instrument(uid)));
    }
    const inst = this.instrument(uid);
    if (s[2] === 'actions') {
      allow('GET');
      if (s.length === 3) return ok(inst.actions);
      if (s.length === 4) {
        const a = inst.actions.find((x) => x.action === s[3]);
        if (!a) throw new SimHttpError(404, `Action not found: ${s[3]}`);
        return ok(a);
      }
    }
    if (s[2] === 'commands') {
      if (s.length === 3) {
        allow('GET', 'POST');
        if (method === 'GET') return ok([...this.commands.values()].filter((c) => c.objectId === uid));
        return ok(this.createCommand(inst, body), 201);
      }
      const cmd = this.commands.get(s[3]);
      if (s.length === 4) {
        allow('GET', 'DELETE');
        if (method === 'DELETE') {
          // Idempotent delete; a running command is killed first.
          if (cmd && cmd.objectId === uid) {
            if (cmd.status === 'running') this.kill(cmd);
            this.commands.delete(cmd.id);
          }
          return ok({ id: s[3], deleted: true });
        }
        if (!cmd || cmd.objectId !== uid) throw new SimHttpError(404, `Command not found: ${s[3]}`);
        return ok(cmd);
      }
      if (s.length === 5 && s[4] === 'kill') {
        allow('POST');
        if (!cmd || cmd.objectId !== uid) throw new SimHttpError(404, `Command not found: ${s[3]}`);
        if (cmd.status === 'running') this.kill(cmd);
        return ok(cmd);
      }
    }
    throw new SimHttpError(404, `Cannot ${method} /${s.join('/')}`);
  }

  private instrument(uid: string): GenieSimInstrument {
    const i = this.instruments.get(uid);
    if (!i) throw new SimHttpError(404, `Instrument not found: ${uid}`);
    return i;
  }

  private instrumentJson(i: GenieSimInstrument): Record<string, unknown> {
    return { uid: i.uid, name: i.name, type: i.type, model: i.model, status: i.status };
  }

  /** Server-side checks, independent of the client's (a client that skips its own gets a 400). */
  private createCommand(inst: GenieSimInstrument, body: unknown): GenieSimCommand {
    const b = (body ?? {}) as { action?: unknown; values?: unknown };
    if (typeof b.action !== 'string') throw new SimHttpError(400, 'action is required');
    const action = inst.actions.find((a) => a.action === b.action);
    if (!action) throw new SimHttpError(404, `Action not found: ${b.action}`);
    const list = b.values === undefined ? [] : b.values;
    if (!Array.isArray(list)) throw new SimHttpError(400, 'values must be a list of {parameterId, value}');
    const byParam = new Map<GenieSimParameter, unknown>();
    for (const v of list as Array<{ parameterId?: unknown; value?: unknown }>) {
      const param = action.parameters.find((q) => q.id === v?.parameterId || q.name === v?.parameterId);
      if (!param) throw new SimHttpError(400, `Unknown parameter: ${String(v?.parameterId)}`);
      byParam.set(param, v.value);
    }
    for (const param of action.parameters) {
      if (!byParam.has(param)) throw new SimHttpError(400, `Missing value for parameter ${param.name}`);
      const problem = this.checkValue(param, byParam.get(param));
      if (problem) throw new SimHttpError(400, `Invalid value for parameter ${param.name}: ${problem}`);
    }
    if (inst.status !== 'online') throw new SimHttpError(409, `Instrument ${inst.name} is offline (connector not reachable)`);
    const now = new Date().toISOString();
    const values = action.parameters.map((q) => ({ parameterId: q.id, value: byParam.get(q) }));
    const cmd: GenieSimCommand = {
      id: crypto.randomBytes(12).toString('hex'),
      objectId: inst.uid,
      createdBy: 'api-token',
      createdAt: now,
      updatedAt: now,
      payload: { action: action.action, values },
      values,
      status: 'running',
      output: null,
      message: null,
      error: null,
      results: null,
    };
    this.commands.set(cmd.id, cmd);
    this.counters.commandsCreated++;
    const named = Object.fromEntries(action.parameters.map((q) => [q.name, byParam.get(q)]));
    const timeParam = action.parameters.find((q) => q.type === 'time');
    const duration = timeParam ? simSeconds(named[timeParam.name]) * this.opts.timeScaleMs : this.opts.commandDurationMs;
    const t = setTimeout(() => {
      this.timers.delete(cmd.id);
      if (cmd.status === 'running') this.complete(inst, action, cmd, named);
    }, Math.max(0, duration));
    this.timers.set(cmd.id, t);
    return cmd;
  }

  private checkValue(param: GenieSimParameter, v: unknown): string | undefined {
    if (param.options && !param.options.some((o) => o === v || String(o) === String(v))) return `not one of ${param.options.join(', ')}`;
    switch (param.type) {
      case 'number': {
        const n = typeof v === 'number' ? v : NaN;
        if (!Number.isFinite(n)) return 'not a number';
        if (param.min !== undefined && n < param.min) return `below ${param.min}`;
        if (param.max !== undefined && n > param.max) return `above ${param.max}`;
        return undefined;
      }
      case 'string': {
        if (typeof v !== 'string') return 'not a string';
        if (param.min !== undefined && v.length < param.min) return `shorter than ${param.min}`;
        if (param.max !== undefined && v.length > param.max) return `longer than ${param.max}`;
        return undefined;
      }
      case 'time':
      case 'volume': {
        const n = param.type === 'time' ? simSeconds(v) : Number(typeof v === 'string' ? v.replace(/\s*(ul|µl)$/i, '') : v);
        if (!Number.isFinite(n)) return `not a ${param.type}`;
        if (param.min !== undefined && n < param.min) return `below ${param.min}`;
        if (param.max !== undefined && n > param.max) return `above ${param.max}`;
        return undefined;
      }
      case 'file':
        return v === undefined || v === null || v === '' ? 'empty file' : undefined;
      default:
        return undefined;
    }
  }

  private complete(inst: GenieSimInstrument, action: GenieSimAction, cmd: GenieSimCommand, v: Record<string, unknown>): void {
    const failing = Object.values(v).find((x) => typeof x === 'string' && /fail/i.test(x));
    if (failing !== undefined) {
      const error = action.action === 'Read Plate' ? `Plate not detected in ${inst.name} (plate ${String(v['Plate ID'])})` : `${inst.name} reported an error running ${action.action}`;
      this.finish(cmd, 'failure', { error, message: `${action.action} failed`, output: `ERROR ${error}` });
      return;
    }
    switch (action.action) {
      case 'Shake':
        this.finish(cmd, 'success', {
          message: `Shook for ${String(v.Time)} at ${String(v.RPM)} rpm (${String(v.Mode)})`,
          output: `shake start\nshake stop after ${simSeconds(v.Time)} s`,
          results: { durationSeconds: simSeconds(v.Time), rpm: v.RPM, mode: v.Mode },
        });
        return;
      case 'Set Temperature':
        this.finish(cmd, 'success', { message: `Set point ${String(v.Temperature)} °C reached`, output: 'ok', results: { setPoint: v.Temperature, current: v.Temperature } });
        return;
      case 'Read Plate': {
        const wells: Record<string, number> = {};
        const seed = crypto.createHash('sha256').update(String(v['Plate ID'])).digest();
        let k = 0;
        for (const row of 'ABCDEFGH') for (let col = 1; col <= 12; col++) wells[`${row}${col}`] = Math.round((0.05 + (seed[k++ % seed.length] / 255) * 1.5) * 1000) / 1000;
        this.finish(cmd, 'success', {
          message: `Read 96 wells at ${String(v.Wavelength)} nm`,
          output: `read plate ${String(v['Plate ID'])}`,
          results: { plateId: v['Plate ID'], wavelength: v.Wavelength, unit: 'OD', wells },
        });
        return;
      }
      default:
        this.finish(cmd, 'success', { message: `${action.action} done`, output: 'ok', results: { action: action.action } });
    }
  }

  private kill(cmd: GenieSimCommand): void {
    this.counters.kills++;
    const t = this.timers.get(cmd.id);
    if (t) clearTimeout(t);
    this.timers.delete(cmd.id);
    this.finish(cmd, 'failure', { error: 'Command killed', message: 'killed by request', killed: true });
  }

  private finish(cmd: GenieSimCommand, status: GenieSimCommandStatus, f: Partial<GenieSimCommand>): void {
    Object.assign(cmd, f, { status, updatedAt: new Date().toISOString() });
  }
}
