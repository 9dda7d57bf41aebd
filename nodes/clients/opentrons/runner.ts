/**
 * Runs one protocol on an Opentrons robot from upload to cleanup, on either API generation:
 *
 *   runs API (5.x–8.x):  POST /protocols → analysis → POST /runs → play → poll → DELETE run → DELETE protocol
 *   sessions API (4.x):  flag check → one-protocol rule → POST /protocols → POST /sessions → loaded →
 *                        protocol.startRun → poll → DELETE session → DELETE protocol
 *
 * The start is never sent twice: when the start request's answer is lost (network), the run is
 * read back and the start is repeated only if the robot did not record it. Polling goes through
 * the shared poller; a robot that drops off the network is polled until it is back (or until the
 * offline limit). Usable without Node-RED.
 */
import * as crypto from 'crypto';
import * as path from 'path';
import { LabError, isCancelled } from '../../lib/http/errors';
import { errorText, type MessageKey } from '../../lib/messages';
import { isTransient, pollUntil } from '../../lib/poll';
import { sleep } from '../../lib/timing';
import { apiErrorDetail, apiErrorId, OpentronsClient } from './client';
import { resolveFile, type ResolvedFile } from './multipart';
import { offsetsOfRecentRun } from './offsets';
import { checkParameterFiles, checkParameterValues, softwareVersion } from './parameters';
import { TERMINAL_RUN_STATUSES, type Analysis, type Generation, type LabwareOffsetCreate, type Protocol, type Run, type Session } from './types';
import {
  busyError,
  doorError,
  fail,
  flagOffError,
  ignore404,
  ms,
  PROTOCOL_EXT,
  robotErrors,
  RUNS_DATA_EXT,
  runsPhase,
  SESSION_FLAG,
  sessionErrors,
  sessionPhase,
  sessionStep,
  timeLimit,
  warning,
  type Outcome,
  type Progress,
  type RobotError,
  type RunnerOptions,
  type RunOutcome,
  type RunRecord,
  type RunRequest,
  type RunWarning,
} from './run-state';

export * from './run-state';

export class ProtocolRunner {
  private record: RunRecord | null = null;
  private cancelRequested = false;
  private generationUsed?: Generation;
  private startedAtMs?: number;
  /** The ids of the run being handled (kept after the record is cleared, for the outcome). */
  private ids: { protocolId?: string; runId?: string } = {};
  private readonly o: Required<Pick<RunnerOptions, 'pollIntervalMs' | 'loadTimeoutMs' | 'runTimeoutMs' | 'offlineTimeoutMs' | 'replaceExisting' | 'readSteps'>> & RunnerOptions;

  constructor(readonly client: OpentronsClient, opts: RunnerOptions = {}) {
    this.o = {
      pollIntervalMs: 1000,
      loadTimeoutMs: 5 * 60_000,
      runTimeoutMs: 0,
      offlineTimeoutMs: 10 * 60_000,
      replaceExisting: true,
      readSteps: true,
      ...opts,
    };
  }

  get current(): RunRecord | null {
    return this.record;
  }

  private setRecord(patch: Partial<RunRecord> | null): void {
    this.record = patch === null ? null : ({ ...(this.record as RunRecord), ...patch } as RunRecord);
    if (this.record) this.ids = { protocolId: this.record.protocolId, runId: this.record.runId };
    this.o.onRecord?.(this.record);
  }

  private progress(p: Progress): void {
    this.o.onProgress?.(p);
  }

  private get rq() {
    return { signal: this.o.signal, onWait: this.o.onWait };
  }

  // ---- entry points ----------------------------------------------------------------------------

  async run(req: RunRequest): Promise<RunOutcome> {
    this.progress({ phase: 'checking' });
    const protocol = await resolveFile(req.protocol, { file: 'protocol' });
    const support: ResolvedFile[] = [];
    for (const [i, s] of (req.supportFiles ?? []).entries()) support.push(await resolveFile(s, { file: 'support', n: i + 1 }));
    if (!PROTOCOL_EXT.has(path.extname(protocol.name).toLowerCase())) {
      throw new LabError('BAD_INPUT', 'ot2.protocolExtension', { name: protocol.name });
    }
    const paramFiles: Array<[string, ResolvedFile]> = [];
    for (const [param, src] of Object.entries(req.runTimeParameterFiles ?? {})) {
      const f = await resolveFile(src, { file: 'parameter', param });
      // POST /dataFiles takes only .csv names (422 otherwise, §2.9): said here, before the robot is touched.
      if (path.extname(f.name).toLowerCase() !== '.csv') throw new LabError('BAD_INPUT', 'ot2.runParams.notCsv', { param, name: f.name });
      paramFiles.push([param, f]);
    }
    const generation = await this.client.generation(this.rq);
    this.generationUsed = generation;
    if (generation === 'sessions') {
      if (paramFiles.length) throw new LabError('BAD_INPUT', 'ot2.runParams.filesNeed8Sessions');
      if (req.labwareOffsets?.length || req.offsetsFromRecentRun) throw new LabError('BAD_INPUT', 'ot2.runParams.offsetsNeed5');
    } else if (paramFiles.length) {
      const version = await this.client.apiVersion(this.rq);
      const v = softwareVersion(version);
      // A development build ("0.0.0-dev") is let through: the robot answers for itself.
      if (v && v[0] < 8) throw new LabError('BAD_INPUT', 'ot2.runParams.filesNeed8', { version });
    }
    this.paramFiles = paramFiles;
    const pendingProtocol = generation === 'runs' ? `labwire-${crypto.randomUUID()}` : protocol.name.replace(/\.[^.]*$/, '');
    this.setRecord({ generation, baseUrl: this.client.baseUrl, started: false, keep: !!req.keep, createdAt: new Date().toISOString(), pendingProtocol });
    try {
      return generation === 'runs' ? await this.runOnRuns(protocol, support, req) : await this.runOnSessions(protocol, support, req);
    } catch (err) {
      // Closing the node: the node decides (leave running, or stop). Anything else: tidy up what
      // this run created, as long as nothing is still running on the robot.
      if (!isCancelled(err)) await this.cleanupAfterError().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Follows a run recorded before a restart to its end, then cleans up as the record says. The
   * record may lag behind the robot (Node-RED stopped while a request was in flight), so the
   * robot is asked: a run it has started is followed; one it has not is never started now (the
   * message that asked for it is gone) — what was created is removed.
   */
  async attach(record: RunRecord): Promise<RunOutcome> {
    this.record = { ...record };
    this.ids = { protocolId: record.protocolId, runId: record.runId };
    this.generationUsed = record.generation;
    this.startedAtMs = record.startedAtMs;
    const g = record.generation;
    let { protocolId, runId } = record;
    if (!protocolId && record.pendingProtocol) {
      protocolId =
        g === 'runs'
          ? (await this.client.listProtocols(this.rq)).find((p) => p.key === record.pendingProtocol)?.id
          : (await this.client.listLegacyProtocols(this.rq)).find((p) => p.id === record.pendingProtocol)?.id;
    }
    if (!runId && protocolId) {
      runId =
        g === 'runs'
          ? (await this.client.listRuns(this.rq)).find((r) => r.protocolId === protocolId)?.id
          : (await this.client.listSessions(this.rq)).find((x) => x.details.protocolId === protocolId)?.id;
    }
    this.ids = { protocolId, runId };
    this.setRecord({ protocolId, runId });
    let started = record.started;
    if (runId && !started) {
      try {
        if (g === 'runs') {
          const run = await this.client.getRun(runId, this.rq);
          started = run.actions?.some((a) => a.actionType === 'play') || run.status !== 'idle';
        } else {
          const x = await this.client.getSession(runId, this.rq);
          started = x.details.events.some((e) => e.source === 'sessionCommand' && e.event === 'protocol.startRun');
        }
      } catch (err) {
        if (!(err instanceof LabError && err.status === 404)) throw err;
        runId = undefined;
      }
      if (started) this.setRecord({ started: true });
    }
    if (!runId || !started) {
      if (runId && g === 'runs') await this.client.runAction(runId, 'stop', this.rq).catch(() => undefined);
      const warnings = record.keep ? [] : await this.cleanup(g, runId, protocolId);
      this.setRecord(null);
      return this.outcome('stopped', 'stopped', { warnings, errors: [{ type: 'NotStarted', detail: errorText('ot2.notStartedDetail') }] });
    }
    try {
      if (g === 'runs') return await this.followRuns(runId, protocolId, record.keep);
      return await this.followSession(runId, protocolId!, record.keep, true);
    } catch (err) {
      if (err instanceof LabError && err.status === 404) {
        this.setRecord(null);
        throw new LabError('TASK_FAILED', 'ot2.runGone', { runId }, { status: 404 });
      }
      throw err;
    }
  }

  // ---- controls --------------------------------------------------------------------------------

  async pause(): Promise<void> {
    const r = await this.mustHaveStarted('ot2.cannotPause');
    if (r.generation === 'runs') await this.client.runAction(r.runId!, 'pause', this.rq);
    else await this.client.sessionCommand(r.runId!, 'protocol.pause', this.rq);
  }

  async resume(): Promise<void> {
    const r = await this.mustHaveStarted('ot2.cannotResume');
    if (r.generation === 'runs') await this.client.runAction(r.runId!, 'play', this.rq);
    else await this.client.sessionCommand(r.runId!, 'protocol.resume', this.rq);
  }

  /** Cancels the run: before the start, it is simply not started; after, the robot is told to stop. */
  async cancel(signal?: AbortSignal): Promise<void> {
    this.cancelRequested = true;
    // A start on its way is let through first, then stopped (it may already be running).
    for (let waited = 0; this.record && !this.record.started && this.startInFlight && waited < 30_000; waited += 20) await sleep(20, signal ?? this.o.signal);
    const r = this.record;
    if (!r?.runId || !r.started || this.stopSent) return;
    this.stopSent = true;
    await this.sendStop(r.generation, r.runId, signal ?? this.o.signal);
  }

  private stopSent = false;
  private paramFiles: Array<[string, ResolvedFile]> = [];
  /** Steps of the run, from the analysis's command count (for "step N of M"). */
  private stepTotal?: number;
  private extras: Pick<RunOutcome, 'parameterFiles' | 'labwareOffsets' | 'labwareOffsetsFromRun'> = {};
  private extraWarnings: RunWarning[] = [];

  private async sendStop(g: Generation, runId: string, signal?: AbortSignal): Promise<void> {
    try {
      if (g === 'runs') await this.client.runAction(runId, 'stop', { signal });
      else await this.client.sessionCommand(runId, 'protocol.cancel', { signal });
    } catch (err) {
      // Already ending (409 / 403 "during state 'finished'"): nothing left to stop.
      if (!(err instanceof LabError && (err.status === 409 || err.status === 403))) throw err;
    }
  }

  /** A cancel that arrived while the start was being sent, before it was known to have started. */
  private async stopIfCancelled(g: Generation, runId: string): Promise<void> {
    if (this.cancelRequested && !this.stopSent) {
      this.stopSent = true;
      await this.sendStop(g, runId, this.o.signal);
    }
  }

  /** The started run; a control that arrives while the start is on its way waits for it. */
  private async mustHaveStarted(notYet: MessageKey): Promise<RunRecord> {
    for (let waited = 0; this.record && !this.record.started && this.startInFlight && waited < 30_000; waited += 20) await sleep(20, this.o.signal);
    const r = this.record;
    if (!r?.runId || !r.started) throw new LabError('BAD_INPUT', notYet);
    return r;
  }

  // ---- runs API --------------------------------------------------------------------------------

  private async runOnRuns(protocol: ResolvedFile, support: ResolvedFile[], req: RunRequest): Promise<RunOutcome> {
    for (const f of support) {
      const ext = path.extname(f.name).toLowerCase();
      if (ext === '.py') {
        throw new LabError('BAD_INPUT', 'ot2.supportPyModule', { name: f.name });
      }
      if (!RUNS_DATA_EXT.has(ext) && ext !== '.json') {
        throw new LabError('BAD_INPUT', 'ot2.supportFileType', { name: f.name });
      }
    }
    await this.ensureRobotFree();
    this.progress({ phase: 'uploading' });
    const fileIds = await this.uploadParameterFiles();
    const values = req.runTimeParameterValues && Object.keys(req.runTimeParameterValues).length ? req.runTimeParameterValues : undefined;
    const checked = !!(values || fileIds);
    // With values or files, the first analysis runs on the defaults: it tells which parameters the
    // protocol declares (type, min, max, choices), so that a bad value is refused here, naming the
    // parameter and the rule, before the robot is asked to analyse or run with it.
    const { protocol: p } = await this.client.uploadProtocol([protocol, ...support], { key: this.record?.pendingProtocol, ...this.rq });
    this.setRecord({ protocolId: p.id });

    this.progress({ phase: 'analyzing' });
    let analysis = await this.waitForAnalysis(p.id, protocol.name, 0);
    if (checked && analysis.result !== 'not-ok') {
      const declared = analysis.runTimeParameters ?? [];
      checkParameterFiles(declared, Object.keys(fileIds ?? {}));
      checkParameterValues(declared, values ?? {});
      const seen = (await this.client.listAnalyses(p.id, this.rq)).length;
      const { created } = await this.client.requestAnalysis(p.id, { runTimeParameterValues: values, runTimeParameterFiles: fileIds }, this.rq);
      if (created) analysis = await this.waitForAnalysis(p.id, protocol.name, seen);
    } else if (analysis.result === 'parameter-value-required') {
      const csv = (analysis.runTimeParameters ?? []).filter((x) => x.type === 'csv_file');
      if (csv.length) checkParameterFiles(analysis.runTimeParameters ?? [], []);
    }
    if (analysis.result !== 'ok') {
      const errors = robotErrors(analysis.errors);
      if (analysis.result === 'parameter-value-required') errors.push({ type: 'ParameterValueRequired', detail: errorText('ot2.parameterValueRequired') });
      const warnings = req.keep ? [] : await this.cleanup('runs', undefined, p.id);
      this.setRecord(null);
      return this.outcome('not-loaded', 'analysis-failed', { errors, warnings });
    }
    if (Array.isArray(analysis.commands)) this.stepTotal = analysis.commands.length;
    if (this.cancelRequested) return this.cancelledBeforeStart('runs', undefined, p.id, req.keep);

    const offsets = [...(await this.recentOffsets(req, p)), ...(req.labwareOffsets ?? [])];
    if (offsets.length) this.extras.labwareOffsets = offsets;
    let run: Run;
    try {
      run = await this.client.createRun({ protocolId: p.id, runTimeParameterValues: values, runTimeParameterFiles: fileIds, labwareOffsets: offsets }, this.rq);
    } catch (err) {
      if (err instanceof LabError && err.status === 409) throw busyError(apiErrorDetail(err));
      throw err;
    }
    this.setRecord({ runId: run.id });
    if (this.cancelRequested) return this.cancelledBeforeStart('runs', run.id, p.id, req.keep);

    this.progress({ phase: 'starting', state: run.status });
    await this.startRunsSafely(run.id);
    return this.followRuns(run.id, p.id, !!req.keep);
  }

  /** The newest analysis, once there are more than `after` and it has completed. */
  private waitForAnalysis(protocolId: string, name: string, after: number): Promise<Analysis> {
    return timeLimit(
      pollUntil(
        async () => {
          const list = await this.client.listAnalyses(protocolId, this.rq);
          return list.length > after ? list[list.length - 1] : undefined;
        },
        (a): a is Analysis => !!a && a.status === 'completed',
        { intervalMs: Math.min(this.o.pollIntervalMs, 500), maxIntervalMs: this.o.pollIntervalMs, factor: 1.5, timeoutMs: this.o.loadTimeoutMs, signal: this.o.signal, what: name },
      ),
      'ot2.analysisTimeout',
      { protocol: name },
    ) as Promise<Analysis>;
  }

  /** POST /dataFiles for each CSV parameter; the ids by parameter. Files the robot already held are reused, never deleted. */
  private async uploadParameterFiles(): Promise<Record<string, string> | undefined> {
    if (!this.paramFiles.length) return undefined;
    const ids: Record<string, string> = {};
    const list: NonNullable<RunOutcome['parameterFiles']> = [];
    for (const [param, file] of this.paramFiles) {
      const { dataFile, reused } = await this.client.uploadDataFile(file, this.rq);
      ids[param] = dataFile.id;
      list.push({ parameter: param, id: dataFile.id, name: dataFile.name, reused });
      if (!reused) this.setRecord({ dataFileIds: [...(this.record?.dataFileIds ?? []), dataFile.id] });
    }
    this.extras.parameterFiles = list;
    return ids;
  }

  /** The offsets of the most recent run of this protocol (offsetsFromRecentRun), or none with a warning. */
  private async recentOffsets(req: RunRequest, p: Protocol): Promise<LabwareOffsetCreate[]> {
    if (!req.offsetsFromRecentRun) return [];
    const found = await offsetsOfRecentRun(this.client, p, this.rq);
    if (!found) {
      const name = typeof p.metadata?.protocolName === 'string' ? (p.metadata.protocolName as string) : (p.files?.find((f) => f.role === 'main')?.name ?? p.id);
      this.extraWarnings.push(warning('ot2.runParams.noRecentOffsets', { protocol: name }));
      return [];
    }
    this.extras.labwareOffsetsFromRun = found.runId;
    return found.offsets;
  }

  private async ensureRobotFree(): Promise<void> {
    const runs = await this.client.listRuns({ pageLength: 20, ...this.rq });
    const active = runs.find((r) => r.current && !TERMINAL_RUN_STATUSES.has(r.status) && r.status !== 'idle');
    if (active) throw fail('ot2.busyRun', { runId: active.id, status: active.status }, { status: 409 });
  }

  /** `play`, never twice: a lost answer is resolved by reading the run's recorded actions. */
  private startInFlight = false;

  private async startRunsSafely(runId: string): Promise<void> {
    this.startInFlight = true;
    try {
      await this.startRunsOnce(runId);
    } finally {
      this.startInFlight = false;
    }
    await this.stopIfCancelled('runs', runId);
  }

  private async startRunsOnce(runId: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.runAction(runId, 'play', this.rq);
        this.markStarted();
        return;
      } catch (err) {
        if (err instanceof LabError && err.status === 409) {
          const detail = apiErrorDetail(err);
          if (/door|window/i.test(detail)) throw doorError(detail);
          throw busyError(detail);
        }
        if (!(err instanceof LabError) || !['NETWORK', 'TIMEOUT'].includes(err.code) || attempt >= 5) throw err;
        // The answer was lost: did the robot record the play?
        const run = await this.pollReachable(() => this.client.getRun(runId, this.rq));
        if (run.actions?.some((a) => a.actionType === 'play') || run.status !== 'idle') {
          this.markStarted();
          return;
        }
      }
    }
  }

  private async followRuns(runId: string, protocolId: string | undefined, keep: boolean): Promise<RunOutcome> {
    if (this.stepTotal === undefined && protocolId && this.o.readSteps) {
      // Reattached after a restart: M for "step N of M" comes from the protocol's newest analysis.
      const list = await this.client.listAnalyses(protocolId, this.rq).catch(() => []);
      const commands = list[list.length - 1]?.commands;
      if (Array.isArray(commands)) this.stepTotal = commands.length;
    }
    let lastStep: Pick<Progress, 'step' | 'stepNumber' | 'stepCount'> = {};
    const final = await this.follow<Run>(
      () => this.client.getRun(runId, this.rq),
      (run) => {
        if (run.ok === false) {
          const detail = run.dataError?.detail;
          throw detail !== undefined ? new LabError('BAD_RESPONSE', 'ot2.badRunData', { runId, detail }) : new LabError('BAD_RESPONSE', 'ot2.badRunDataNoDetail', { runId });
        }
        return TERMINAL_RUN_STATUSES.has(run.status);
      },
      async (run) => {
        if (run.status === 'running' && this.o.readSteps) {
          const page = await this.client.currentCommands(runId, this.rq).catch(() => undefined);
          const cmd = page?.data?.[page.data.length - 1];
          if (cmd) {
            const idx = page?.links?.current?.meta?.index;
            const msg = typeof cmd.params?.message === 'string' ? `: ${cmd.params.message}` : '';
            // M is the analysis's command count; the robot's totalLength counts only the commands so far.
            lastStep = { step: `${cmd.commandType}${msg}`, ...(idx !== undefined ? { stepNumber: idx + 1, stepCount: this.stepTotal ?? page!.meta.totalLength } : {}) };
          }
        }
        this.progress({ phase: runsPhase(run.status), state: run.status, ...(run.status === 'running' ? lastStep : {}) });
      },
    );
    this.progress({ phase: 'cleaning-up', state: final.status });
    const warnings = keep ? [] : await this.cleanup('runs', runId, protocolId);
    this.setRecord(null);
    const outcome: Outcome = final.status === 'succeeded' ? 'succeeded' : final.status === 'failed' ? 'failed' : 'stopped';
    return this.outcome(outcome, final.status, {
      errors: robotErrors(final.errors),
      warnings,
      startedAt: final.startedAt,
      completedAt: final.completedAt,
      robotMs: ms(final.startedAt, final.completedAt),
      kept: keep,
    });
  }

  // ---- sessions API (4.x) ----------------------------------------------------------------------

  private async runOnSessions(protocol: ResolvedFile, support: ResolvedFile[], req: RunRequest): Promise<RunOutcome> {
    if (req.runTimeParameterValues && Object.keys(req.runTimeParameterValues).length) {
      throw new LabError('BAD_INPUT', 'ot2.parametersNeed73');
    }
    // The feature flag, checked first so that nothing is uploaded to a robot that will refuse.
    const settings = await this.client.getSettings(this.rq).catch((err) => {
      if (isTransient(err) || isCancelled(err)) throw err;
      return []; // /settings unreadable: the 403 on POST /sessions tells us instead
    });
    const flag = settings.find((s) => s.id === SESSION_FLAG);
    if (flag && flag.value !== true) throw flagOffError();

    // One protocol at a time (4.x keeps at most one): never replace one that a session is running.
    const sessions = await this.client.listSessions(this.rq);
    const busy = sessions.find((s) => s.details.currentState === 'running' || s.details.currentState === 'paused');
    if (busy) throw fail('ot2.busySession', { protocol: busy.details.protocolId, state: String(busy.details.currentState), session: busy.id }, { status: 409 });
    for (const old of await this.client.listLegacyProtocols(this.rq)) {
      if (!this.o.replaceExisting) {
        throw fail('ot2.protocolAlreadyOnRobot', { protocol: old.id });
      }
      for (const s of sessions.filter((x) => x.details.protocolId === old.id)) await this.client.deleteSession(s.id, this.rq).catch(ignore404);
      await this.client.deleteLegacyProtocol(old.id, this.rq).catch(ignore404);
    }

    this.progress({ phase: 'uploading' });
    let lp;
    try {
      lp = await this.client.uploadLegacyProtocol(protocol, support, this.rq);
    } catch (err) {
      if (err instanceof LabError && err.status === 403) {
        throw fail('ot2.uploadRefused', { detail: apiErrorDetail(err) || err }, { status: 403 });
      }
      throw err;
    }
    this.setRecord({ protocolId: lp.id });
    if (lp.errors?.length) {
      const errors = lp.errors.map((e) => ({ type: e.type, detail: e.description, line: e.lineNumber }));
      const warnings = req.keep ? [] : await this.cleanup('sessions', undefined, lp.id);
      this.setRecord(null);
      return this.outcome('not-loaded', 'error', { errors, warnings });
    }
    if (this.cancelRequested) return this.cancelledBeforeStart('sessions', undefined, lp.id, req.keep);

    let session: Session;
    try {
      session = await this.client.createSession(lp.id, this.rq);
    } catch (err) {
      if (err instanceof LabError && err.status === 403 && /disabled/i.test(apiErrorDetail(err))) throw flagOffError();
      throw err;
    }
    this.setRecord({ runId: session.id });

    // The session starts in `stopped` while it loads and simulates; wait for `loaded` or `error`.
    this.progress({ phase: 'loading', state: session.details.currentState ?? undefined });
    const loaded = await timeLimit(
      pollUntil(
        () => this.client.getSession(session.id, this.rq),
        (s) => s.details.currentState === 'loaded' || s.details.currentState === 'error' || s.details.currentState === 'finished',
        { intervalMs: Math.min(this.o.pollIntervalMs, 500), maxIntervalMs: this.o.pollIntervalMs, factor: 1.5, timeoutMs: this.o.loadTimeoutMs, signal: this.o.signal, what: lp.id },
      ),
      'ot2.loadingTimeout',
      { protocol: lp.id },
    );
    if (loaded.details.currentState === 'error') {
      const warnings = req.keep ? [] : await this.cleanup('sessions', session.id, lp.id);
      this.setRecord(null);
      return this.outcome('not-loaded', 'error', { errors: sessionErrors(loaded.details.events), warnings });
    }
    if (this.cancelRequested) return this.cancelledBeforeStart('sessions', session.id, lp.id, req.keep);

    this.progress({ phase: 'starting', state: 'loaded' });
    await this.startSessionSafely(session.id);
    return this.followSession(session.id, lp.id, !!req.keep, false);
  }

  private async startSessionSafely(sessionId: string): Promise<void> {
    this.startInFlight = true;
    try {
      await this.startSessionOnce(sessionId);
    } finally {
      this.startInFlight = false;
    }
    await this.stopIfCancelled('sessions', sessionId);
  }

  private async startSessionOnce(sessionId: string): Promise<void> {
    const startEvents = (s: Session) => s.details.events.filter((e) => e.source === 'sessionCommand' && e.event === 'protocol.startRun').length;
    const before = startEvents(await this.client.getSession(sessionId, this.rq));
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.sessionCommand(sessionId, 'protocol.startRun', this.rq);
        this.markStarted();
        return;
      } catch (err) {
        if (err instanceof LabError && err.status === 403) {
          const detail = apiErrorDetail(err);
          if (/door|window/i.test(detail)) throw doorError(detail);
          if (/not active/i.test(detail)) throw fail('ot2.sessionNotActive', { detail }, { status: 403 });
          throw busyError(detail);
        }
        if (!(err instanceof LabError) || !['NETWORK', 'TIMEOUT'].includes(err.code) || attempt >= 5) throw err;
        const s = await this.pollReachable(() => this.client.getSession(sessionId, this.rq));
        if (startEvents(s) > before || s.details.currentState !== 'loaded') {
          this.markStarted();
          return;
        }
      }
    }
  }

  private async followSession(sessionId: string, protocolId: string, keep: boolean, afterRestart: boolean): Promise<RunOutcome> {
    // `stopped` is terminal only once the start was accepted (before that it means "loading").
    const final = await this.follow<Session>(
      () => this.client.getSession(sessionId, this.rq),
      (s) => {
        const st = s.details.currentState;
        return st === 'finished' || st === 'error' || (st === 'stopped' && (this.record?.started || afterRestart));
      },
      async (s) => {
        const st = s.details.currentState ?? 'unknown';
        this.progress({ phase: sessionPhase(st), state: st, step: st === 'running' ? sessionStep(s.details.events) : undefined });
      },
    );
    const st = final.details.currentState as string;
    this.progress({ phase: 'cleaning-up', state: st });
    const warnings = keep ? [] : await this.cleanup('sessions', sessionId, protocolId);
    this.setRecord(null);
    const outcome: Outcome = st === 'finished' ? 'succeeded' : st === 'error' ? 'failed' : 'stopped';
    return this.outcome(outcome, st, { errors: outcome === 'failed' ? sessionErrors(final.details.events) : [], warnings, kept: keep });
  }

  // ---- shared pieces ---------------------------------------------------------------------------

  private markStarted(): void {
    this.startedAtMs = Date.now();
    this.setRecord({ started: true, startedAtMs: this.startedAtMs });
  }

  /** Polls the run until terminal; the robot going offline is waited out up to the offline limit. */
  private async follow<T>(get: () => Promise<T>, isDone: (v: T) => boolean, onState: (v: T) => Promise<void>): Promise<T> {
    let offlineSince: number | undefined;
    const offline = Symbol('offline');
    const result = await timeLimit(pollUntil<T | typeof offline>(
      async () => {
        try {
          const v = await get();
          offlineSince = undefined;
          await onState(v);
          return v;
        } catch (err) {
          if (!isTransient(err)) throw err;
          offlineSince ??= Date.now();
          this.progress({ phase: 'offline' });
          return offline;
        }
      },
      (v) => (v === offline ? !!this.o.offlineTimeoutMs && Date.now() - offlineSince! >= this.o.offlineTimeoutMs : isDone(v)),
      { intervalMs: this.o.pollIntervalMs, factor: 1, timeoutMs: this.o.runTimeoutMs, signal: this.o.signal, what: 'run' },
    ), 'ot2.runTimeout');
    if (result === offline) {
      throw new LabError('NETWORK', 'ot2.unreachable', { seconds: Math.round(this.o.offlineTimeoutMs / 1000) });
    }
    return result as T;
  }

  /** Repeats a read until the robot answers (used after a lost start answer). */
  private pollReachable<T>(get: () => Promise<T>): Promise<T> {
    return timeLimit(
      pollUntil(get, () => true, { intervalMs: this.o.pollIntervalMs, factor: 1.5, maxIntervalMs: 10_000, timeoutMs: this.o.offlineTimeoutMs || 0, signal: this.o.signal, what: 'robot' }),
      'ot2.reachAgainTimeout',
    );
  }

  private async cancelledBeforeStart(g: Generation, runId: string | undefined, protocolId: string, keep?: boolean): Promise<RunOutcome> {
    if (g === 'runs' && runId) await this.client.runAction(runId, 'stop', this.rq).catch(() => undefined);
    const warnings = keep ? [] : await this.cleanup(g, runId, protocolId);
    this.setRecord(null);
    return this.outcome('stopped', 'stopped', { warnings, errors: [{ type: 'Cancelled', detail: errorText('ot2.cancelledDetail') }] });
  }

  /** Deletes run/session then protocol; returns what could not be done (never throws). */
  async cleanup(g: Generation, runId: string | undefined, protocolId: string | undefined, signal?: AbortSignal): Promise<RunWarning[]> {
    const warnings: RunWarning[] = [];
    const o = { signal: signal ?? this.o.signal };
    if (runId) {
      for (let attempt = 0; ; attempt++) {
        try {
          if (g === 'runs') await this.client.deleteRun(runId, o);
          else await this.client.deleteSession(runId, o);
          break;
        } catch (err) {
          if (err instanceof LabError && err.status === 404) break;
          // 409 RunNotIdle: a stop is still being carried out; give it a moment.
          if (err instanceof LabError && err.status === 409 && attempt < 10) {
            await sleep(Math.min(this.o.pollIntervalMs, 500), o.signal);
            continue;
          }
          warnings.push(warning(g === 'runs' ? 'ot2.deleteRunFailed' : 'ot2.deleteSessionFailed', { runId }, err));
          return warnings; // the protocol cannot go while its run is there
        }
      }
    }
    if (protocolId) {
      try {
        if (g === 'runs') await this.client.deleteProtocol(protocolId, o);
        else await this.client.deleteLegacyProtocol(protocolId, o);
      } catch (err) {
        if (!(err instanceof LabError && err.status === 404)) {
          warnings.push(warning(apiErrorId(err) === 'ProtocolUsedByRun' ? 'ot2.deleteProtocolInUse' : 'ot2.deleteProtocolFailed', { protocolId }, err));
        }
      }
    }
    warnings.push(...(await this.deleteDataFiles(o)));
    return warnings;
  }

  /**
   * The data files this run uploaded. Robot software 8.1 has no DELETE for them (405, §2.9; the
   * robot itself drops the oldest beyond 50): they are deleted only on newer software, where the
   * route exists (UNCONFIRMED from which version: sent only above 8.1, and a 404/405 is accepted).
   */
  private async deleteDataFiles(o: { signal?: AbortSignal }): Promise<RunWarning[]> {
    const ids = this.record?.dataFileIds ?? [];
    if (!ids.length) return [];
    const v = softwareVersion(await this.client.apiVersion(o).catch(() => ''));
    if (!v || v[0] < 8 || (v[0] === 8 && v[1] <= 1)) return [];
    const warnings: RunWarning[] = [];
    for (const fileId of ids) {
      try {
        await this.client.deleteDataFile(fileId, o);
      } catch (err) {
        if (!(err instanceof LabError && (err.status === 404 || err.status === 405))) warnings.push(warning('ot2.runParams.deleteDataFileFailed', { fileId }, err));
      }
    }
    return warnings;
  }

  /** After an error: delete what this run created, unless it was started and may be running. */
  private async cleanupAfterError(): Promise<void> {
    const r = this.record;
    if (!r || r.keep) return;
    if (r.started) return; // something may be moving on the robot: leave it for a person to look at
    const ctl = AbortSignal.timeout(10_000);
    if (r.generation === 'runs' && r.runId) await this.client.runAction(r.runId, 'stop', { signal: ctl }).catch(() => undefined);
    await this.cleanup(r.generation, r.runId, r.protocolId, ctl);
    this.setRecord(null);
  }

  /** For Node-RED close with "stop the run": stop it, wait briefly for the stop, clean up. */
  async stopForShutdown(timeoutMs = 10_000): Promise<void> {
    const r = this.record;
    if (!r) return;
    const signal = AbortSignal.timeout(timeoutMs);
    let runId = r.runId;
    if (!runId && r.protocolId) {
      // The stop aborted a create (POST /runs, /sessions) that the robot may have carried out:
      // its id never arrived. Look the run up by its protocol, as attach() does after a restart.
      // (If the robot makes it only after this look-up, the protocol cannot be deleted, the
      // record stays and the next start finds and removes the run.)
      runId = await (r.generation === 'runs'
        ? this.client.listRuns({ signal }).then((rs) => rs.find((x) => x.protocolId === r.protocolId)?.id)
        : this.client.listSessions({ signal }).then((ss) => ss.find((x) => x.details.protocolId === r.protocolId)?.id)
      ).catch(() => undefined);
      if (runId) this.setRecord({ runId });
    }
    if (runId) {
      if (r.generation === 'runs') await this.client.runAction(runId, 'stop', { signal }).catch(() => undefined);
      // A start on its way counts as started: the robot may carry it out after we are gone.
      else if (r.started || this.startInFlight) await this.client.sessionCommand(runId, 'protocol.cancel', { signal }).catch(() => undefined);
    }
    if (!r.keep) {
      const warnings = await this.cleanup(r.generation, runId, r.protocolId, signal).catch(() => null);
      if (!warnings || warnings.length) return; // keep the record: the next start tries again
    }
    this.setRecord(null);
  }

  private outcome(
    outcome: Outcome,
    state: string,
    x: { errors?: RobotError[]; warnings?: RunWarning[]; startedAt?: string; completedAt?: string; robotMs?: number; kept?: boolean },
  ): RunOutcome {
    const seenAtMs = Date.now();
    const r = this.ids;
    return {
      outcome,
      state,
      generation: this.generationUsed ?? 'runs',
      protocolId: r.protocolId,
      runId: r.runId,
      durationMs: x.robotMs ?? (this.startedAtMs ? seenAtMs - this.startedAtMs : 0),
      startedAt: x.startedAt ?? (this.startedAtMs ? new Date(this.startedAtMs).toISOString() : undefined),
      completedAt: x.completedAt ?? (this.startedAtMs ? new Date(seenAtMs).toISOString() : undefined),
      errors: x.errors ?? [],
      kept: !!x.kept,
      warnings: [...this.extraWarnings, ...(x.warnings ?? [])].map((w) => errorText(w.key, w.vars)),
      warningMessages: [...this.extraWarnings, ...(x.warnings ?? [])],
      seenAtMs,
      ...this.extras,
    };
  }
}

