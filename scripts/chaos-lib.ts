/**
 * Chaos harness building blocks (used by scripts/chaos.ts — `npm run chaos` — and by
 * test/chaos.test.ts): run example 01 in a real `node-red` process against the lab simulator, drop
 * files into the watched folder, inject faults or SIGKILL Node-RED, and count what happened FROM
 * THE SIMULATOR's own state (blobs, processors, tasks, request log), not from what the flow says.
 *
 * Node properties are set per node type through `NodeOverrides` (defaults below, then the
 * scenario's, then LABWIRE_CHAOS_OVERRIDES='{"lab-watch-folder":{"retryBaseSec":1}}', then the
 * caller's), so a new node setting is a one-line change.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startLabSimulator, spreadFaults, DEFAULT_API_KEY, type LabSimulator, type BenchlingSim, type BenchlingSimOptions, type FaultKind } from '../simulator';
import { freePort, readExample, startNodeRed, type NodeRedProcess } from './node-red-process';
import { resultsLoopEnv } from './example-env';

export const EXAMPLE_01 = '01 - Instrument CSV to Benchling run';
/** The text the simulator gives a FAIL-named file's task (and so the watcher's dead-letter reason). */
export const SIM_FAIL_TEXT = 'Output file processing failed (simulated)';
/** Blob ids (the simulator's are UUIDs). */
const BLOB_ID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** mulberry32: a small seeded PRNG (0 ≤ x < 1), so a run's random choices can be repeated. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Node property overrides per node type
// ---------------------------------------------------------------------------------------------

/** Node properties to set, by node type: { 'lab-watch-folder': { stability: 0.4 }, … }. */
export type NodeOverrides = Record<string, Record<string, unknown>>;

/** Short timings, as test/e2e.test.ts uses them. */
export const BASE_OVERRIDES: NodeOverrides = {
  inject: { once: true, onceDelay: 0.2, repeat: '' },
  // The example's debug nodes (outcomes, the Catch's errors) also go to Node-RED's log (--log FILE).
  debug: { console: true },
  'lab-watch-folder': { stability: 0.4, rescanInterval: 2 },
  'benchling-poll-task': { interval: 0.1, maxInterval: 0.3 },
};

/**
 * The chaos scenarios' watcher: retries sooner than the example's 30 s doubling to 30 min, so a
 * run takes minutes, not hours; dead-letters go to a failed folder, so every file leaves the
 * watched folder.
 */
export const CHAOS_WATCHER: NodeOverrides = {
  'lab-watch-folder': { retryBase: 1, retryMax: 8, failedFolder: '${LAB_FAILED_FOLDER}' },
};

export function mergeOverrides(...layers: Array<NodeOverrides | undefined>): NodeOverrides {
  const out: NodeOverrides = {};
  for (const layer of layers) {
    for (const [type, props] of Object.entries(layer ?? {})) out[type] = { ...(out[type] ?? {}), ...props };
  }
  return out;
}

/** LABWIRE_CHAOS_OVERRIDES (JSON, NodeOverrides shape), or {}. */
export function overridesFromEnv(env: NodeJS.ProcessEnv = process.env): NodeOverrides {
  const raw = env.LABWIRE_CHAOS_OVERRIDES;
  if (!raw) return {};
  const v = JSON.parse(raw) as unknown;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('LABWIRE_CHAOS_OVERRIDES must be a JSON object: {"node-type": {"property": value}}');
  return v as NodeOverrides;
}

/** `type.property=value` (value parsed as JSON when it parses, else a string) → NodeOverrides. */
export function parseSetting(s: string): NodeOverrides {
  const m = /^([^.=]+)\.([^=]+)=(.*)$/.exec(s);
  if (!m) throw new Error(`--set wants node-type.property=value, got ${s}`);
  let value: unknown = m[3];
  try {
    value = JSON.parse(m[3]);
  } catch {
    /* a plain string */
  }
  return { [m[1]]: { [m[2]]: value } };
}

/** Example 01 as a user imports it, with the overrides applied and the simulator's API key. */
export function exampleFlow(overrides: NodeOverrides, apiKey = DEFAULT_API_KEY, name = EXAMPLE_01): Array<Record<string, unknown>> {
  return readExample(name).map((n) => {
    const o = overrides[String(n.type)] ?? {};
    const out: Record<string, unknown> = { ...n, ...o };
    if (n.type === 'benchling-tenant') out.credentials = { apiKey, ...((o.credentials as object | undefined) ?? {}) };
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// A lab: simulator + folders + a Node-RED process that can be killed and restarted
// ---------------------------------------------------------------------------------------------

export interface LabOptions {
  /** Prefix of the temp folder. */
  name: string;
  benchling: Omit<BenchlingSimOptions, 'host'>;
  overrides: NodeOverrides;
  /** More environment for Node-RED (e.g. new watcher settings read from the environment). */
  env?: Record<string, string>;
  /** Keep the temp folder (for a look afterwards). */
  keep?: boolean;
  /** Node-RED's log lines also go here. */
  onLog?: (line: string) => void;
}

export class ChaosLab {
  readonly root: string;
  readonly instrument: string;
  readonly archive: string;
  /** Offered to the flow as LAB_FAILED_FOLDER (for a dead-letter folder setting, once there is one). */
  readonly failed: string;
  readonly userDir: string;
  sim!: LabSimulator;
  red: NodeRedProcess | undefined;
  /** Node-RED's log, all starts (the last 5,000 lines). */
  readonly log: string[] = [];
  starts = 0;
  private closed = false;

  constructor(private readonly o: LabOptions) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), `labwire-chaos-${o.name}-`));
    this.instrument = path.join(this.root, 'instrument');
    this.archive = path.join(this.root, 'archive');
    this.failed = path.join(this.root, 'failed');
    this.userDir = path.join(this.root, 'node-red');
    fs.mkdirSync(this.instrument, { recursive: true });
  }

  get benchling(): BenchlingSim {
    return this.sim.benchling;
  }

  async startSimulator(): Promise<void> {
    this.sim = await startLabSimulator({ benchling: this.o.benchling });
  }

  /** Starts Node-RED on the same user directory; the first start deploys the example. */
  async startNodeRed(): Promise<NodeRedProcess> {
    const first = this.starts === 0;
    this.starts++;
    const red = await startNodeRed({
      userDir: this.userDir,
      port: await freePort(),
      env: {
        ...resultsLoopEnv(this.benchling.url, { instrument: this.instrument, archive: this.archive }),
        LAB_FAILED_FOLDER: this.failed,
        ...(this.o.env ?? {}),
      },
      onLog: (l) => {
        this.log.push(l);
        if (this.log.length > 5000) this.log.splice(0, this.log.length - 5000);
        this.o.onLog?.(l);
      },
    });
    this.red = red;
    // Later starts read flows.json, flows_cred.json and the journals back from the user directory.
    if (first) await red.deploy(exampleFlow(this.o.overrides));
    return red;
  }

  /** SIGKILL, as a power cut or the OOM killer would. */
  async killNodeRed(): Promise<void> {
    const red = this.red;
    this.red = undefined;
    if (!red || red.child.exitCode !== null || red.child.signalCode !== null) return;
    const exited = new Promise((r) => red.child.once('exit', r));
    red.child.kill('SIGKILL');
    await exited;
  }

  writeFile(name: string): void {
    fs.writeFileSync(path.join(this.instrument, name), `well,od\nA1,0.1\nB1,0.2\n# ${name}\n`);
  }

  /** Kills Node-RED, closes the simulator and removes the temp folder (unless kept). Never throws. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.killNodeRed().catch(() => undefined);
    await this.sim?.close().catch(() => undefined);
    if (!this.o.keep) fs.rmSync(this.root, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Counting from the simulator (and the folders and journals)
// ---------------------------------------------------------------------------------------------

/**
 * Every `.jsonl` file under `<userDir>/labwire-state/` — the journals and the finished journeys'
 * history (`history/…`), where a file's blob id lives once its journey is done: relative path → text.
 */
export function readJournals(userDir: string): Map<string, string> {
  const dir = path.join(userDir, 'labwire-state');
  const out = new Map<string, string>();
  if (!fs.existsSync(dir)) return out;
  for (const f of fs.readdirSync(dir, { recursive: true }).map(String)) {
    if (f.endsWith('.jsonl')) out.set(f.split(path.sep).join('/'), fs.readFileSync(path.join(dir, f), 'utf8'));
  }
  return out;
}

/**
 * The watcher's latest journal record about `file` (a record whose key, or else whose text,
 * names the file), as text; undefined when none. Deletions are skipped. The record's shape is not
 * assumed.
 */
export function latestLedgerRecord(userDir: string, file: string): string | undefined {
  let last: string | undefined;
  for (const [name, text] of readJournals(userDir)) {
    if (!name.startsWith('watch-folder-')) continue;
    for (const line of text.split('\n')) {
      if (!line.includes(file)) continue;
      try {
        const rec = JSON.parse(line) as { k?: unknown; d?: unknown };
        if (rec.d) continue;
      } catch {
        continue; // a torn last line
      }
      last = line;
    }
  }
  return last;
}

/** Where a FAIL file ended up: 'in place', 'archived', 'moved to <path>' or 'gone'. */
function whereIs(lab: ChaosLab, file: string): string {
  if (fs.existsSync(path.join(lab.instrument, file))) return 'in place';
  if (fs.existsSync(path.join(lab.archive, file))) return 'archived';
  const found = (fs.readdirSync(lab.root, { recursive: true }) as string[]).find((p) => path.basename(String(p)) === file && !String(p).startsWith('node-red'));
  return found ? `moved to ${found}` : 'gone';
}

export interface FailFileFigures {
  file: string;
  processors: number;
  /** Status of each of its processors. */
  statuses: string[];
  /**
   * The watcher's latest ledger record is a dead-letter with the reason: the simulator's text, or —
   * when the answer to `:process-output` was lost and the task id with it — the FAILED processor's
   * id (Benchling keeps the message only on the task, which cannot be listed or looked up).
   */
  reasonRecorded: boolean;
  /** Which reason: Benchling's message, or the processor named because the task's answer was lost. */
  reasonKind: 'message' | 'processor' | 'none';
  where: string;
  /** The latest ledger record (trimmed), for the report. */
  ledger?: string;
}

export interface ChaosFigures {
  files: number;
  /** Normal files with at least one SUCCEEDED processor. */
  succeeded: number;
  /** Normal files in the archive folder. */
  archived: number;
  /** Archived normal files WITHOUT a SUCCEEDED processor (a harness / flow error; must be 0). */
  archivedWithoutSuccess: number;
  /** Normal files still in the watched folder. */
  leftInFolder: number;
  /** Processors beyond the first, over all files (normal and FAIL). */
  duplicateProcessors: number;
  /** Files with more than one processor. */
  filesWithDuplicates: number;
  processors: number;
  /** Blobs named like one of the files. */
  blobs: number;
  /** COMPLETE blobs of these files that no processor uses. */
  blobsWithoutProcessor: number;
  /** IN_PROGRESS (multipart, never completed nor aborted) blobs of these files. */
  blobsInProgress: number;
  blobsAborted: number;
  /** Tasks by status (process-output tasks of these files' processors). */
  tasks: Record<string, number>;
  /** FAIL files with more than one processor (retried after failing). */
  failRetried: number;
  /** FAIL files whose ledger record holds the simulator's reason. */
  failDeadLettered: number;
  /** Of those, the ones whose reason could only name the processor (the task's answer was lost). */
  failProcessorNamed: number;
  failFiles: FailFileFigures[];
  requests: number;
  faults: Partial<Record<FaultKind, number>>;
  /** 429s from the simulator's rate limiter (not injected ones). */
  rateLimited429: number;
  injected429: number;
  /** Requests still open at the simulator when counted (hung / trickling). */
  openRequests: number;
}

/** How the FAIL file's dead-letter names its reason (see `FailFileFigures.reasonRecorded`). */
function failReasonKind(ledger: string | undefined, processors: { id: string; status: string }[]): FailFileFigures['reasonKind'] {
  if (!ledger) return 'none';
  let record: { v?: { state?: string; failure?: { code?: string; message?: string } } };
  try {
    record = JSON.parse(ledger);
  } catch {
    return 'none';
  }
  const v = record.v;
  if (v?.state !== 'failed') return 'none';
  if (ledger.includes(SIM_FAIL_TEXT)) return 'message';
  const failed = processors.filter((p) => p.status === 'FAILED');
  const message = v.failure?.message ?? '';
  return v.failure?.code === 'TASK_FAILED' && failed.length === 1 && message.includes(failed[0].id) ? 'processor' : 'none';
}

export function countFromSimulator(lab: ChaosLab, normal: string[], failFiles: string[]): ChaosFigures {
  const sim = lab.benchling;
  const all = new Set([...normal, ...failFiles]);
  const processors = sim.listProcessorInfo().filter((p) => all.has(p.fileName));
  const byFile = new Map<string, typeof processors>();
  for (const p of processors) byFile.set(p.fileName, [...(byFile.get(p.fileName) ?? []), p]);
  const blobs = sim.listBlobs().filter((b) => all.has(b.name));
  const used = new Set(processors.map((p) => p.fileId));
  const succeededFiles = new Set(processors.filter((p) => p.status === 'SUCCEEDED').map((p) => p.fileName));
  const archived = normal.filter((f) => fs.existsSync(path.join(lab.archive, f)));
  const tasks: Record<string, number> = {};
  const taskIds = new Set(processors.flatMap((p) => p.taskIds));
  for (const t of sim.listTasks()) if (taskIds.has(t.id)) tasks[t.status] = (tasks[t.status] ?? 0) + 1;
  const fails: FailFileFigures[] = failFiles.map((file) => {
    const ps = byFile.get(file) ?? [];
    const ledger = latestLedgerRecord(lab.userDir, file);
    const reasonKind = failReasonKind(ledger, ps);
    return {
      file,
      processors: ps.length,
      statuses: ps.map((p) => p.status),
      reasonRecorded: reasonKind !== 'none',
      reasonKind,
      where: whereIs(lab, file),
      ledger: ledger && (ledger.length > 300 ? ledger.slice(0, 300) + '…' : ledger),
    };
  });
  const faults: Partial<Record<FaultKind, number>> = {};
  for (const [k, v] of Object.entries(sim.counters.faults)) if (v) faults[k as FaultKind] = v;
  return {
    files: normal.length,
    succeeded: normal.filter((f) => succeededFiles.has(f)).length,
    archived: archived.length,
    archivedWithoutSuccess: archived.filter((f) => !succeededFiles.has(f)).length,
    leftInFolder: normal.filter((f) => fs.existsSync(path.join(lab.instrument, f))).length,
    duplicateProcessors: [...byFile.values()].reduce((a, ps) => a + Math.max(0, ps.length - 1), 0),
    filesWithDuplicates: [...byFile.values()].filter((ps) => ps.length > 1).length,
    processors: processors.length,
    blobs: blobs.length,
    blobsWithoutProcessor: blobs.filter((b) => b.uploadStatus === 'COMPLETE' && !used.has(b.id)).length,
    blobsInProgress: blobs.filter((b) => b.uploadStatus === 'IN_PROGRESS').length,
    blobsAborted: blobs.filter((b) => b.uploadStatus === 'ABORTED').length,
    tasks,
    failRetried: fails.filter((f) => f.processors > 1).length,
    failDeadLettered: fails.filter((f) => f.reasonRecorded).length,
    failProcessorNamed: fails.filter((f) => f.reasonKind === 'processor').length,
    failFiles: fails,
    requests: sim.counters.requests,
    faults,
    rateLimited429: sim.requestLog.filter((e) => e.rateLimited).length,
    injected429: sim.requestLog.filter((e) => e.fault === '429').length,
    openRequests: sim.openRequests,
  };
}

/**
 * Unrecorded blobs that hold data (COMPLETE, or with parts uploaded): the ones that matter. An
 * upload whose `:start-multipart-upload` answer was lost (a kill or a reset in that request) leaves
 * an empty IN_PROGRESS blob whose id never reached us: no bytes, no link, nothing to lose.
 */
export function blobsWithDataNotInJournals(lab: ChaosLab, files: string[]): string[] {
  const unrecorded = new Set(blobsNotInJournals(lab, files));
  return lab.benchling
    .listBlobs()
    .filter((b) => unrecorded.has(b.id) && (b.uploadStatus === 'COMPLETE' || b.parts.length > 0))
    .map((b) => b.id);
}

/** Blob ids the simulator holds for these files that appear in no journal or history file under `<userDir>/labwire-state/`. */
export function blobsNotInJournals(lab: ChaosLab, files: string[]): string[] {
  const names = new Set(files);
  const seen = new Set<string>();
  for (const text of readJournals(lab.userDir).values()) for (const m of text.matchAll(BLOB_ID_RE)) seen.add(m[0].toLowerCase());
  return lab.benchling
    .listBlobs()
    .filter((b) => names.has(b.name) && !seen.has(b.id.toLowerCase()))
    .map((b) => b.id);
}

// ---------------------------------------------------------------------------------------------
// Waiting until the lab has settled
// ---------------------------------------------------------------------------------------------

export interface SettleOptions {
  /** Give up after this long. */
  deadlineMs: number;
  /** Stop early when nothing changed (files, processors, requests, journals) for this long and no request is open. */
  stallMs: number;
  /** Once done, nothing may change for this long (a late retry of a FAIL file would show). */
  quietMs: number;
}

export type SettleOutcome = 'settled' | 'stalled' | 'deadline' | 'interrupted';

let aborted = false;
/** Makes every waiting scenario stop waiting (Ctrl-C); the scenarios still clean up. */
export function abortChaos(): void {
  aborted = true;
}

/**
 * Waits until every normal file is archived with a SUCCEEDED processor and every FAIL file has a
 * FAILED processor (then `quietMs` without change), or nothing moves for `stallMs`, or the deadline.
 */
export async function settle(lab: ChaosLab, normal: string[], failFiles: string[], o: SettleOptions, isBusy: () => boolean = () => false): Promise<SettleOutcome> {
  const t0 = Date.now();
  let lastSig = '';
  let lastChange = Date.now();
  for (;;) {
    const sim = lab.benchling;
    const journals = [...readJournals(lab.userDir).values()].reduce((a, t) => a + t.length, 0);
    const archived = normal.filter((f) => fs.existsSync(path.join(lab.archive, f))).length;
    const sig = `${archived}|${sim.listProcessorInfo().length}|${sim.counters.requests}|${journals}|${fs.readdirSync(lab.instrument).length}`;
    if (sig !== lastSig) {
      lastSig = sig;
      lastChange = Date.now();
    }
    const quietFor = Date.now() - lastChange;
    if (!isBusy()) {
      const f = countFromSimulator(lab, normal, failFiles);
      const done = f.archived === normal.length && f.succeeded === normal.length && f.failFiles.every((x) => x.statuses.includes('FAILED'));
      if (done && sim.openRequests === 0 && quietFor >= o.quietMs) return 'settled';
      if (!done && sim.openRequests === 0 && quietFor >= o.stallMs) return 'stalled';
    }
    if (Date.now() - t0 > o.deadlineMs) return 'deadline';
    if (aborted) return 'interrupted';
    await delay(250);
  }
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

export interface Check {
  name: string;
  ok: boolean;
  value: string;
}

export interface ScenarioResult {
  scenario: 'A' | 'B';
  outcome: SettleOutcome;
  seconds: number;
  figures: ChaosFigures & Record<string, unknown>;
  checks: Check[];
  ok: boolean;
  /** Node-RED's last log lines (for a failure report). */
  logTail: string[];
}

const check = (name: string, ok: boolean, value: unknown): Check => ({ name, ok, value: String(value) });

export interface ScenarioAOptions {
  files: number;
  failFiles: number;
  /** Total fault share, spread over every kind. */
  faults: number;
  /** Only these fault kinds (default all). */
  faultKinds?: FaultKind[];
  seed: number;
  overrides?: NodeOverrides;
  env?: Record<string, string>;
  deadlineMs: number;
  stallMs: number;
  quietMs: number;
  trickleByteMs?: number;
  keep?: boolean;
  onLog?: (l: string) => void;
  onProgress?: (text: string) => void;
}

export const fileNames = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i + 1).padStart(3, '0')}.csv`);

/**
 * A — faults, no restart: example 01 in a real Node-RED, the simulator injecting `faults` of
 * every kind (rate limit off, tenant timeout 3 s), `files` normal files plus `failFiles`
 * FAIL-*.csv files dropped at once.
 */
export async function runScenarioA(o: ScenarioAOptions): Promise<ScenarioResult> {
  const normal = fileNames('plate', o.files);
  const fail = fileNames('FAIL-plate', o.failFiles);
  const lab = new ChaosLab({
    name: 'A',
    benchling: {
      rateLimit: false,
      taskDurationMs: 300,
      faults: spreadFaults(o.faults, o.faultKinds),
      faultTimings: { slowMinMs: 1000, slowMaxMs: 3000, trickleByteMs: o.trickleByteMs ?? 1000 },
      random: seededRandom(o.seed ^ 0xa5a5),
    },
    overrides: mergeOverrides(
      BASE_OVERRIDES,
      CHAOS_WATCHER,
      { 'benchling-tenant': { rateLimit: 600, timeout: 3 } },
      overridesFromEnv(),
      o.overrides,
    ),
    env: o.env,
    keep: o.keep,
    onLog: o.onLog,
  });
  const t0 = Date.now();
  try {
    await lab.startSimulator();
    await lab.startNodeRed();
    for (const f of [...normal, ...fail]) lab.writeFile(f);
    o.onProgress?.(`A: ${normal.length} + ${fail.length} FAIL files written to ${lab.instrument}`);
    const outcome = await settle(lab, normal, fail, { deadlineMs: o.deadlineMs, stallMs: o.stallMs, quietMs: o.quietMs });
    const seconds = Math.round((Date.now() - t0) / 1000);
    const f = countFromSimulator(lab, normal, fail);
    const unrecorded = new Set(blobsNotInJournals(lab, [...normal, ...fail]));
    const withDataUnrecorded = blobsWithDataNotInJournals(lab, [...normal, ...fail]);
    const inProgressThatMatter = lab.benchling
      .listBlobs()
      .filter((b) => b.uploadStatus === 'IN_PROGRESS' && (!unrecorded.has(b.id) || b.parts.length > 0));
    const checks = [
      check('settled (not stalled, not past the deadline)', outcome === 'settled', outcome),
      check('normal files with a SUCCEEDED processor', f.succeeded === f.files, `${f.succeeded}/${f.files}`),
      check('normal files archived', f.archived === f.files, `${f.archived}/${f.files}`),
      check('archived without a SUCCEEDED processor', f.archivedWithoutSuccess === 0, f.archivedWithoutSuccess),
      check('normal files left in the watched folder', f.leftInFolder === 0, f.leftInFolder),
      check('duplicate processors', f.duplicateProcessors === 0, f.duplicateProcessors),
      check('COMPLETE blobs without a processor', f.blobsWithoutProcessor === 0, f.blobsWithoutProcessor),
      // An upload whose start answer was lost (resetAfter/500After/htmlAfter on the start) leaves an
      // empty IN_PROGRESS blob we never learnt the id of; one we recorded, or one with parts, must end.
      check('IN_PROGRESS blobs left that were recorded or hold data', inProgressThatMatter.length === 0, inProgressThatMatter.length),
      check('blobs with data not recorded in the journals', withDataUnrecorded.length === 0, withDataUnrecorded.length),
      check('FAIL files processed more than once', f.failRetried === 0, `${f.failRetried}/${fail.length}`),
      check('FAIL files with exactly one FAILED processor', f.failFiles.every((x) => x.processors === 1 && x.statuses[0] === 'FAILED'), `${f.failFiles.filter((x) => x.processors === 1 && x.statuses[0] === 'FAILED').length}/${fail.length}`),
      check(
        `FAIL files dead-lettered with "${SIM_FAIL_TEXT}" (or, task answer lost, the processor)`,
        f.failDeadLettered === fail.length,
        `${f.failDeadLettered}/${fail.length}` + (f.failProcessorNamed ? ` (${f.failProcessorNamed} by processor)` : ''),
      ),
      check('FAIL files not archived', f.failFiles.every((x) => x.where !== 'archived'), f.failFiles.filter((x) => x.where === 'archived').length + ' archived'),
    ];
    return { scenario: 'A', outcome, seconds, figures: { ...f, faultShare: o.faults }, checks, ok: checks.every((c) => c.ok), logTail: lab.log.slice(-60) };
  } finally {
    await lab.close();
  }
}

export interface ScenarioBOptions {
  files: number;
  kills: number;
  /** ms between two files. */
  writeEveryMs: number;
  /** Seconds between kills: uniformly drawn from [min, max]. */
  killMinSec: number;
  killMaxSec: number;
  seed: number;
  overrides?: NodeOverrides;
  env?: Record<string, string>;
  deadlineMs: number;
  stallMs: number;
  quietMs: number;
  keep?: boolean;
  onLog?: (l: string) => void;
  onProgress?: (text: string) => void;
}

/**
 * B — crashes: files written every `writeEveryMs`, Node-RED SIGKILLed `kills` times at random
 * intervals and restarted on the same user directory, with the example's rate limit (60 per 30 s
 * on both sides), no injected faults.
 */
export async function runScenarioB(o: ScenarioBOptions): Promise<ScenarioResult> {
  const normal = fileNames('run', o.files);
  const rnd = seededRandom(o.seed);
  const lab = new ChaosLab({
    name: 'B',
    benchling: { rateLimit: { limit: 60, windowMs: 30_000 }, taskDurationMs: 300 },
    overrides: mergeOverrides(BASE_OVERRIDES, CHAOS_WATCHER, { 'benchling-poll-task': { interval: 0.5, maxInterval: 2 } }, overridesFromEnv(), o.overrides),
    env: o.env,
    keep: o.keep,
    onLog: o.onLog,
  });
  const killTimes: number[] = [];
  const restartSeconds: number[] = [];
  let writing: Promise<void> | undefined;
  let busy = true;
  try {
    await lab.startSimulator();
    await lab.startNodeRed();
    const tStart = Date.now();
    writing = (async () => {
      for (const f of normal) {
        if (aborted) return;
        lab.writeFile(f);
        await delay(o.writeEveryMs);
      }
    })();
    for (let k = 0; k < o.kills && !aborted; k++) {
      const wait = (o.killMinSec + rnd() * (o.killMaxSec - o.killMinSec)) * 1000;
      await delay(wait);
      await lab.killNodeRed();
      killTimes.push(Date.now());
      o.onProgress?.(`B: kill ${k + 1}/${o.kills} after ${(wait / 1000).toFixed(1)} s (${countFromSimulator(lab, normal, []).succeeded}/${normal.length} succeeded so far)`);
      const r0 = Date.now();
      await lab.startNodeRed();
      restartSeconds.push(Math.round((Date.now() - r0) / 100) / 10);
    }
    await writing;
    busy = false;
    const outcome = await settle(lab, normal, [], { deadlineMs: o.deadlineMs, stallMs: o.stallMs, quietMs: o.quietMs }, () => busy);
    const seconds = Math.round((Date.now() - tStart) / 1000);
    const f = countFromSimulator(lab, normal, []);
    const notJournaled = blobsNotInJournals(lab, normal);
    const notJournaledWithData = blobsWithDataNotInJournals(lab, normal);
    const firstKill = killTimes[0] ?? Infinity;
    const rateLimitedAfterRestart = lab.benchling.requestLog.filter((e) => e.rateLimited && e.time >= firstKill).length;
    const checks = [
      check('settled (not stalled, not past the deadline)', outcome === 'settled', outcome),
      check('files with a SUCCEEDED processor', f.succeeded === f.files, `${f.succeeded}/${f.files}`),
      check('files archived', f.archived === f.files, `${f.archived}/${f.files}`),
      check('archived without a SUCCEEDED processor', f.archivedWithoutSuccess === 0, f.archivedWithoutSuccess),
      check('duplicate processors', f.duplicateProcessors === 0, f.duplicateProcessors),
      check('blobs with data not recorded in the journals', notJournaledWithData.length === 0, notJournaledWithData.length),
      check('COMPLETE blobs without a processor', f.blobsWithoutProcessor === 0, f.blobsWithoutProcessor),
      check('429s from the rate limiter after a restart', rateLimitedAfterRestart === 0, rateLimitedAfterRestart),
    ];
    return {
      scenario: 'B',
      outcome,
      seconds,
      figures: { ...f, kills: killTimes.length, restartSeconds, blobsNotInJournals: notJournaled.length, notJournaledBlobIds: notJournaled, blobsWithDataNotInJournals: notJournaledWithData.length, rateLimited429AfterRestart: rateLimitedAfterRestart },
      checks,
      ok: checks.every((c) => c.ok),
      logTail: lab.log.slice(-60),
    };
  } finally {
    busy = false;
    await writing?.catch(() => undefined);
    await lab.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

/** A readable table of a scenario's checks and figures. */
export function formatResult(r: ScenarioResult): string {
  const w = Math.max(...r.checks.map((c) => c.name.length), 30);
  const lines = [`Scenario ${r.scenario}: ${r.ok ? 'PASS' : 'FAIL'} (${r.outcome} after ${r.seconds} s)`, `  ${'check'.padEnd(w)}  ${'value'.padEnd(12)} ok`];
  for (const c of r.checks) lines.push(`  ${c.name.padEnd(w)}  ${c.value.padEnd(12)} ${c.ok ? 'yes' : 'NO'}`);
  const f = r.figures;
  lines.push(`  figures: files ${f.files}, processors ${f.processors}, blobs ${f.blobs} (${f.blobsAborted} aborted), tasks ${JSON.stringify(f.tasks)}`);
  lines.push(`           requests ${f.requests}, rate-limiter 429s ${f.rateLimited429}, injected 429s ${f.injected429}, open requests at the end ${f.openRequests}`);
  if (Object.keys(f.faults).length) lines.push(`           faults injected ${JSON.stringify(f.faults)}`);
  if (r.scenario === 'B') lines.push(`           kills ${f.kills}, restart times (s) ${JSON.stringify(f.restartSeconds)}`);
  for (const x of f.failFiles) lines.push(`  ${x.file}: ${x.processors} processor(s) [${x.statuses.join(', ')}], ${x.where}, ledger: ${x.ledger ?? '(none)'}`);
  return lines.join('\n');
}
