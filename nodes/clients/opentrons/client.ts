/**
 * Typed client for an Opentrons robot's HTTP API (robot-server, port 31950), both generations:
 * the 4.x experimental protocol-sessions API and the 5.x–8.x runs API. Usable without Node-RED.
 * Every request goes through the pack's shared HttpClient (timeouts, retries, error wording) and
 * carries `Opentrons-Version: 2` (the minimum every 4.x–8.x robot accepts; the run and protocol
 * shapes are the same at 2 and at 4 — reference §0).
 */
import { HttpClient, type HttpResponse, type OnWait, type RequestSpec } from '../../lib/http/client';
import { LabError, requireField } from '../../lib/http/errors';
import { errorText } from '../../lib/messages';
import type { NetworkOptions } from '../../lib/http/network';
import { multipartBody, type FormPart, type ResolvedFile } from './multipart';
import type {
  AdvancedSetting,
  Analysis,
  DataFile,
  LabwareOffsetCreate,
  CommandPage,
  Generation,
  GenerationSetting,
  Health,
  LegacyProtocol,
  Protocol,
  Run,
  RunAction,
  Session,
  SessionCommand,
} from './types';

export const DEFAULT_PORT = 31950;
export const OPENTRONS_VERSION = '2';

export interface OpentronsClientOptions {
  /** Host name or IP (`ot2.local`, `10.0.0.5`), or a full `http://host:port` URL. */
  host: string;
  port?: number;
  generation?: GenerationSetting;
  timeoutMs?: number;
  retries?: number;
  backoff?: { baseMs: number; maxMs: number };
  network?: NetworkOptions;
}

type Opts = { signal?: AbortSignal; onWait?: OnWait };

/** Builds `http://host:port` from the config node's fields; a clear error when they are unusable. */
export function robotBaseUrl(host: string, port?: number): string {
  const h = (host ?? '').trim();
  if (!h) throw new LabError('BAD_INPUT', 'ot2.hostMissing');
  if (/^https?:\/\//i.test(h)) {
    let u: URL;
    try {
      u = new URL(h);
    } catch {
      throw new LabError('BAD_INPUT', 'ot2.addressNotUrl', { address: h });
    }
    if (!u.port && port) u.port = String(port);
    return u.origin;
  }
  if (/[\s/?#@]/.test(h)) throw new LabError('BAD_INPUT', 'ot2.hostInvalid', { host: h });
  const p = port ?? DEFAULT_PORT;
  if (!Number.isInteger(p) || p <= 0 || p > 65535) throw new LabError('BAD_INPUT', 'ot2.portInvalid', { port: String(port) });
  const hostPart = h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
  return `http://${hostPart}:${p}`;
}

/** Robot error bodies: `{errors:[{id,title,detail,errorCode?}]}` or legacy `{message}` (reference §1.6, §2.10). */
export function describeOpentronsError(status: number, body: unknown): { message: string; apiError?: Record<string, unknown> } | undefined {
  const b = body as { errors?: Array<Record<string, unknown>>; message?: unknown; detail?: unknown };
  const first = Array.isArray(b?.errors) ? b.errors[0] : undefined;
  if (first && typeof first === 'object') {
    const detail = typeof first.detail === 'string' ? first.detail : '';
    const title = typeof first.title === 'string' ? first.title : String(first.id ?? 'error');
    const text = detail ? `${title}: ${detail}` : title; // the robot's own words
    const more = b.errors!.length - 1;
    return { message: more > 0 ? errorText('ot2.moreErrors', { text, count: more }) : text, apiError: first };
  }
  if (typeof b?.message === 'string') return { message: b.message, apiError: { message: b.message } };
  if (Array.isArray(b?.detail)) return { message: errorText('ot2.invalidRequest', { detail: JSON.stringify(b.detail).slice(0, 200) }) };
  return undefined;
}

/** The robot's error id (`RunAlreadyActive`, `UncategorizedError`…) from a LabError, if any. */
export function apiErrorId(err: unknown): string | undefined {
  return err instanceof LabError && typeof err.apiError?.id === 'string' ? (err.apiError.id as string) : undefined;
}

export function apiErrorDetail(err: unknown): string {
  if (err instanceof LabError && err.apiError) {
    const a = err.apiError;
    return String(a.detail ?? a.message ?? '');
  }
  return '';
}

export class OpentronsClient {
  readonly http: HttpClient;
  readonly baseUrl: string;
  private generationSetting: GenerationSetting;
  private detected?: Generation;
  private version?: string;

  constructor(readonly opts: OpentronsClientOptions) {
    this.baseUrl = robotBaseUrl(opts.host, opts.port);
    this.generationSetting = opts.generation ?? 'auto';
    this.http = new HttpClient({
      service: 'OT-2',
      baseUrl: this.baseUrl,
      auth: () => ({ 'Opentrons-Version': OPENTRONS_VERSION }),
      timeoutMs: opts.timeoutMs ?? 15_000,
      retries: opts.retries ?? 4,
      rateLimitRetries: 6,
      backoff: opts.backoff ?? { baseMs: 500, maxMs: 5_000 },
      network: opts.network,
      describeApiError: describeOpentronsError,
    });
  }

  private async req<T>(spec: RequestSpec): Promise<T> {
    const res: HttpResponse<T> = await this.http.request<T>(spec);
    return res.data;
  }

  // ---- common ---------------------------------------------------------------------------------

  health(o: Opts = {}): Promise<Health> {
    return this.req<Health>({ method: 'GET', path: '/health', ...o });
  }

  /**
   * The API generation: the configured one, or (auto) from `GET /health`'s `api_version`:
   * major < 5 → the 4.x sessions API, else the runs API (reference §0.2). Cached per client.
   */
  async generation(o: Opts = {}): Promise<Generation> {
    if (this.generationSetting !== 'auto') return this.generationSetting;
    if (this.detected) return this.detected;
    const h = await this.health(o);
    // robot_model exists from 5.0.0 on (reference §0.2): a development build reporting
    // api_version "0.0.0-dev" is a runs-API robot too.
    this.version = String(h.api_version ?? '');
    if (typeof h.robot_model === 'string' && h.robot_model) return (this.detected = 'runs');
    const major = Number(/^\s*(\d+)/.exec(String(h.api_version ?? ''))?.[1]);
    if (!Number.isFinite(major)) {
      throw new LabError('BAD_RESPONSE', 'ot2.apiVersionUnknown', { version: String(h.api_version) });
    }
    this.detected = major < 5 ? 'sessions' : 'runs';
    return this.detected;
  }

  /** The robot software version (`GET /health` api_version), read once per client. */
  async apiVersion(o: Opts = {}): Promise<string> {
    if (this.version === undefined) this.version = String((await this.health(o)).api_version ?? '');
    return this.version;
  }

  // ---- runs API (5.x – 8.x) ------------------------------------------------------------------

  /**
   * `POST /dataFiles` (8.0+, multipart `file`): a CSV for a CSV runtime parameter. The robot answers
   * 200 with the id of a file it already holds with the same content, 201 for a new one (§2.9).
   */
  async uploadDataFile(file: ResolvedFile, o: Opts = {}): Promise<{ dataFile: DataFile; reused: boolean }> {
    const res = await this.http.request<{ data: DataFile }>({ method: 'POST', path: '/dataFiles', body: multipartBody([{ field: 'file', file }]), idempotent: true, timeoutMs: 120_000, ...o });
    requireField(res.data?.data, 'Opentrons POST /dataFiles', 'id');
    return { dataFile: res.data.data, reused: res.status === 200 };
  }

  /** Not in 8.1.0 (405 there): only sent to newer robot software (see the runner). */
  async deleteDataFile(id: string, o: Opts = {}): Promise<void> {
    await this.req({ method: 'DELETE', path: `/dataFiles/${enc(id)}`, ...o });
  }

  /**
   * `POST /protocols/{id}/analyses` (7.3+): analyse again with these runtime parameter values and
   * files. `created` false (200): the robot found its last analysis used the same values (e.g.
   * values equal to the defaults) and started none — that analysis stands.
   */
  async requestAnalysis(protocolId: string, body: { runTimeParameterValues?: Record<string, unknown>; runTimeParameterFiles?: Record<string, string> }, o: Opts = {}): Promise<{ created: boolean }> {
    const data: Record<string, unknown> = {};
    if (body.runTimeParameterValues && Object.keys(body.runTimeParameterValues).length) data.runTimeParameterValues = body.runTimeParameterValues;
    if (body.runTimeParameterFiles && Object.keys(body.runTimeParameterFiles).length) data.runTimeParameterFiles = body.runTimeParameterFiles;
    const res = await this.http.request({ method: 'POST', path: `/protocols/${enc(protocolId)}/analyses`, json: { data }, idempotent: true, ...o });
    return { created: res.status !== 200 };
  }

  async uploadProtocol(files: ResolvedFile[], extra: { runTimeParameterValues?: Record<string, unknown>; key?: string } & Opts = {}): Promise<{ protocol: Protocol; reused: boolean }> {
    const parts: FormPart[] = files.map((file) => ({ field: 'files', file }));
    if (extra.key) parts.push({ field: 'key', value: extra.key });
    if (extra.runTimeParameterValues && Object.keys(extra.runTimeParameterValues).length) {
      // A string holding a JSON object on this endpoint (unlike POST /runs) — reference §2.1.
      parts.push({ field: 'runTimeParameterValues', value: JSON.stringify(extra.runTimeParameterValues) });
    }
    // POST /protocols is idempotent: the identical file set returns 200 with the same id (§2.1).
    const res = await this.http.request<{ data: Protocol }>({ method: 'POST', path: '/protocols', body: multipartBody(parts), idempotent: true, timeoutMs: 120_000, signal: extra.signal, onWait: extra.onWait });
    requireField(res.data?.data, 'Opentrons POST /protocols', 'id');
    return { protocol: res.data.data, reused: res.status === 200 };
  }

  async listProtocols(o: Opts = {}): Promise<Protocol[]> {
    return (await this.req<{ data: Protocol[] }>({ method: 'GET', path: '/protocols', ...o })).data ?? [];
  }

  async getProtocol(id: string, o: Opts = {}): Promise<Protocol> {
    return (await this.req<{ data: Protocol }>({ method: 'GET', path: `/protocols/${enc(id)}`, ...o })).data;
  }

  async listAnalyses(protocolId: string, o: Opts = {}): Promise<Analysis[]> {
    return (await this.req<{ data: Analysis[] }>({ method: 'GET', path: `/protocols/${enc(protocolId)}/analyses`, ...o })).data ?? [];
  }

  async deleteProtocol(id: string, o: Opts = {}): Promise<void> {
    await this.req({ method: 'DELETE', path: `/protocols/${enc(id)}`, ...o });
  }

  async listRuns(o: Opts & { pageLength?: number } = {}): Promise<Run[]> {
    return (await this.req<{ data: Run[] }>({ method: 'GET', path: '/runs', query: { pageLength: o.pageLength }, signal: o.signal, onWait: o.onWait })).data ?? [];
  }

  async createRun(
    body: { protocolId: string; runTimeParameterValues?: Record<string, unknown>; runTimeParameterFiles?: Record<string, string>; labwareOffsets?: LabwareOffsetCreate[] },
    o: Opts = {},
  ): Promise<Run> {
    const data: Record<string, unknown> = { protocolId: body.protocolId };
    if (body.runTimeParameterValues && Object.keys(body.runTimeParameterValues).length) data.runTimeParameterValues = body.runTimeParameterValues;
    // A real JSON object here, unlike the string form field on POST /protocols (§2.3).
    if (body.runTimeParameterFiles && Object.keys(body.runTimeParameterFiles).length) data.runTimeParameterFiles = body.runTimeParameterFiles;
    if (body.labwareOffsets?.length) data.labwareOffsets = body.labwareOffsets;
    const run = (await this.req<{ data: Run }>({ method: 'POST', path: '/runs', json: { data }, ...o }))?.data;
    requireField(run, 'Opentrons POST /runs', 'id');
    return run;
  }

  async getRun(id: string, o: Opts = {}): Promise<Run> {
    return (await this.req<{ data: Run }>({ method: 'GET', path: `/runs/${enc(id)}`, ...o })).data;
  }

  async runAction(id: string, actionType: RunAction['actionType'], o: Opts = {}): Promise<RunAction> {
    return (await this.req<{ data: RunAction }>({ method: 'POST', path: `/runs/${enc(id)}/actions`, json: { data: { actionType } }, ...o })).data;
  }

  /** The command near the current one (no cursor: the server picks one near it, §2.7). */
  async currentCommands(id: string, o: Opts = {}): Promise<CommandPage> {
    return this.req<CommandPage>({ method: 'GET', path: `/runs/${enc(id)}/commands`, query: { pageLength: 1 }, ...o });
  }

  async deleteRun(id: string, o: Opts = {}): Promise<void> {
    await this.req({ method: 'DELETE', path: `/runs/${enc(id)}`, ...o });
  }

  // ---- sessions API (4.x) --------------------------------------------------------------------

  async getSettings(o: Opts = {}): Promise<AdvancedSetting[]> {
    return (await this.req<{ settings: AdvancedSetting[] }>({ method: 'GET', path: '/settings', ...o })).settings ?? [];
  }

  async listLegacyProtocols(o: Opts = {}): Promise<LegacyProtocol[]> {
    return (await this.req<{ data: LegacyProtocol[] }>({ method: 'GET', path: '/protocols', ...o })).data ?? [];
  }

  async uploadLegacyProtocol(protocolFile: ResolvedFile, supportFiles: ResolvedFile[], o: Opts = {}): Promise<LegacyProtocol> {
    const parts: FormPart[] = [{ field: 'protocolFile', file: protocolFile }, ...supportFiles.map((file) => ({ field: 'supportFiles', file }))];
    // Not idempotent on 4.x: a repeat of the same stem answers 403 "Resource Exists".
    const protocol = (await this.req<{ data: LegacyProtocol }>({ method: 'POST', path: '/protocols', body: multipartBody(parts), timeoutMs: 120_000, ...o }))?.data;
    requireField(protocol, 'Opentrons POST /protocols', 'id');
    return protocol;
  }

  async deleteLegacyProtocol(id: string, o: Opts = {}): Promise<void> {
    await this.req({ method: 'DELETE', path: `/protocols/${enc(id)}`, ...o });
  }

  async listSessions(o: Opts = {}): Promise<Session[]> {
    return (await this.req<{ data: Session[] }>({ method: 'GET', path: '/sessions', query: { session_type: 'protocol' }, ...o })).data ?? [];
  }

  async createSession(protocolId: string, o: Opts = {}): Promise<Session> {
    const session = (await this.req<{ data: Session }>({ method: 'POST', path: '/sessions', json: { data: { sessionType: 'protocol', createParams: { protocolId } } }, ...o }))?.data;
    requireField(session, 'Opentrons POST /sessions', 'id');
    return session;
  }

  async getSession(id: string, o: Opts = {}): Promise<Session> {
    return (await this.req<{ data: Session }>({ method: 'GET', path: `/sessions/${enc(id)}`, ...o })).data;
  }

  async sessionCommand(id: string, command: SessionCommand, o: Opts = {}): Promise<void> {
    await this.req({ method: 'POST', path: `/sessions/${enc(id)}/commands/execute`, json: { data: { command, data: {} } }, ...o });
  }

  async deleteSession(id: string, o: Opts = {}): Promise<void> {
    await this.req({ method: 'DELETE', path: `/sessions/${enc(id)}`, ...o });
  }

  /** Keeps the connections open through a close() until released (see HttpClient.hold). */
  hold(): () => void {
    return this.http.hold();
  }

  close(): void {
    this.http.close();
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}
