/**
 * Benchmark: uploading a large file as a Benchling blob (multipart, streamed parts) to the lab
 * simulator, against what the machine itself can do.
 *
 * Each role runs in its own child process, so that no figure includes another's CPU or memory:
 *   sim      — the Benchling simulator (rate limit off); answers blob look-ups over IPC. The
 *              simulator checks every part's MD5 and the whole file's.
 *   native   — (the target's baseline) `md5sum` and `base64` over the same file, CPU of both as
 *              counted by the shell (`times`): the unavoidable work done by native tools.
 *   baseline — (context) a Node process reading the file in the same parts and chunks as the
 *              upload, computing each part's MD5 and the base64 of every byte.
 *   naive    — the wall-time reference: a straightforward uploader written here (plain `http`,
 *              10 MB parts each read whole into memory and sent as one JSON string, 2 parts in
 *              flight, no backpressure handling) to the same simulator.
 *   upload   — BenchlingClient.uploadFile(file); idle RSS is taken after the client is loaded, one
 *              request made and a small file uploaded (see warmUp), before the upload; RSS is sampled every 20 ms and VmHWM is read at the end.
 *   send     — (context only) writes as many bytes as the upload puts on the wire, from ready-made
 *              Buffers, to a `sink` process over loopback TCP: the kernel's share of the upload.
 *   fair     — a file uploaded under the tenant's limit (60 / 30 s, a simulator that enforces it)
 *              while task polls are issued as a flow would (`BENCH_FAIR_POLLERS` files polled every
 *              `BENCH_FAIR_POLL_MS`): the latency of each poll.
 * After every upload the blob is checked in the simulator: COMPLETE, with the file's MD5 and size.
 *
 * Every size is measured `repeats` times (default 3; fresh processes each time), roles
 * interleaved, and the medians are reported; peak RSS is the worst of the repeats.
 *
 * Targets: upload CPU ÷ native CPU ≤ 1.3; upload wall ÷ naive wall ≤ 0.9; peak RSS above idle
 * ≤ 64 MiB for every size and within 5 MiB between sizes; poll latency p95 ≤ 2 s.
 *
 *   node dist/bench/upload-blob.js [100M,1G | none] [repeats] [--fair 1G]
 */
import { fork, spawnSync, ChildProcess } from 'child_process';
import * as http from 'http';
import { createHash, randomFillSync } from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { PART_SIZE } from '../nodes/clients/benchling/blob-upload';
import { base64Length, STRING_CHUNK as CHUNK_SIZE } from '../nodes/lib/base64/base64-workspace';

export const CPU_RATIO_TARGET = 1.3;
export const WALL_RATIO_TARGET = 0.9;
export const RSS_TARGET_MIB = 64;
export const RSS_SPREAD_TARGET_MIB = 5;
/** Requests a warmed-up upload process has made before its idle point (see warmUp). */
const WARM_UP_POLLS = 1000;
const IDLE_KIND = process.env.BENCH_UPLOAD_FRESH === '1' ? 'a fresh process' : `a running process, after a warm-up upload, ${WARM_UP_POLLS} polls and a full GC`;
export const POLL_P95_TARGET_S = 2;
/** The naive reference's parts: 10 MB, read whole. */
const NAIVE_PART_SIZE = 10_000_000;
const NAIVE_IN_FLIGHT = 2;
const MiB = 1024 * 1024;
const CHILD_TIMEOUT_MS = 30 * 60_000;

export interface UploadBenchResult {
  label: string;
  bytes: number;
  parts: number;
  /** How many times baseline and upload were measured (medians below). */
  repeats: number;
  /** Upload wall time, s (uploadFile called → complete-upload answered). */
  wallS: number;
  /** File bytes per second of upload wall time, MiB/s. */
  mibPerS: number;
  /** CPU (user + system) of the upload process during the upload, s. */
  uploadCpuS: number;
  uploadUserS: number;
  uploadSysS: number;
  /** `md5sum` + `base64` over the file, CPU s (user + system) — the target's baseline. */
  nativeCpuS: number;
  nativeUserS: number;
  nativeSysS: number;
  /** Median over the runs of upload CPU ÷ native CPU (each run's pair measured side by side) — the target. */
  cpuRatio: number;
  /** Node read + MD5 + base64 (context). */
  baselineCpuS: number;
  baselineUserS: number;
  baselineSysS: number;
  baselineWallS: number;
  /** uploadCpuS ÷ baselineCpuS (context). */
  cpuRatioVsNode: number;
  /** The naive two-in-flight uploader: wall s, CPU s, peak RSS above idle (worst). */
  naiveWallS: number;
  naiveCpuS: number;
  naivePeakAboveIdleMiB: number;
  /** Median over the runs of upload wall ÷ naive wall — the target. */
  wallRatio: number;
  wallPass: boolean;
  /** Bytes the upload puts on the wire (part bodies). */
  wireBytes: number;
  /** CPU to write wireBytes of ready-made Buffers to a loopback socket, s (context). */
  loopbackSendCpuS: number;
  /** uploadCpuS ÷ (baselineCpuS + loopbackSendCpuS) (context). */
  cpuRatioWithSend: number;
  idleRssMiB: number;
  /** Highest of the 20 ms samples and VmHWM, minus idle RSS (worst repeat). */
  peakAboveIdleMiB: number;
  sampledPeakAboveIdleMiB: number;
  hwmAboveIdleMiB: number;
  /** CPU the simulator process spent on one upload, s (context; not counted). */
  simCpuS: number;
  verified: boolean;
  verifyDetail: string;
  cpuPass: boolean;
  rssPass: boolean;
  /** Peak RSS above idle of one more run with a full GC every 200 ms (context: the memory really held). */
  collectedPeakAboveIdleMiB: number;
  /** Peak RSS above idle of one more run from a fresh process, no warm-up (context: the first upload after a start). */
  freshPeakAboveIdleMiB: number;
  /** Every repeat's raw figures. */
  runs: Array<{ uploadCpuS: number; nativeCpuS: number; baselineCpuS: number; wallS: number; naiveWallS: number; peakAboveIdleMiB: number }>;
}

export interface FairBenchResult {
  label: string;
  /** Requests per window of the simulator's (and our governor's) limit. */
  limit: string;
  uploadWallS: number;
  parts: number;
  pollers: number;
  pollIntervalS: number;
  polls: number;
  pollP50S: number;
  pollP95S: number;
  pollMaxS: number;
  rateLimited429: number;
  verified: boolean;
  pass: boolean;
}

// ------------------------------------------------------------------------------ child roles

interface CpuWall {
  cpuUserUs: number;
  cpuSysUs: number;
  wallMs: number;
}

interface UploadChildResult extends CpuWall {
  idleRss: number;
  sampledPeak: number;
  hwm: number;
  blobId: string;
  status: string;
  parts: number;
}

function measureStart(): { cpu: NodeJS.CpuUsage; t: bigint } {
  return { cpu: process.cpuUsage(), t: process.hrtime.bigint() };
}

function measureEnd(s: { cpu: NodeJS.CpuUsage; t: bigint }): CpuWall {
  const c = process.cpuUsage(s.cpu);
  return { cpuUserUs: c.user, cpuSysUs: c.system, wallMs: Number(process.hrtime.bigint() - s.t) / 1e6 };
}

function send(m: unknown): Promise<void> {
  return new Promise((resolve, reject) => (process.send as NonNullable<typeof process.send>)(m, undefined, {}, (e) => (e ? reject(e) : resolve())));
}

/**
 * Starts the kernel's peak-RSS count (VmHWM) again from the current RSS, so that it measures the
 * upload and not the warm-up before it (Linux ≥ 4.0: "5" written to clear_refs). Where that is
 * not possible VmHWM keeps the process' whole peak, which only makes the figure higher.
 */
function resetVmHwm(): void {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    /* not Linux, or not allowed: see above */
  }
}

function vmHwmBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Idle as in a Node-RED that has been running — polling and uploading — for a while. In a process
 * just started, V8's young generation (where every short-lived object is made) is not resident
 * yet, and the code of the request path is not optimised: the first ~10 MB of ordinary garbage
 * brings the young generation's pages in, and the first few hundred requests get their code
 * compiled by TurboFan, whose working memory stays with the process. An upload of 1 GiB (~110
 * requests, ~1,400 reads) does both — `--trace-opt` counted 92 functions optimised during it
 * (axios' config merging, stream writes, fs reads, nextTick), against 4 during 100 MiB; with
 * `--no-opt` the two sizes peaked 0.7 MiB apart — which made a 7 MiB difference in "peak RSS above
 * idle" between the sizes with no buffer of ours growing. That happens once per process, not per
 * upload: the bench prints it as context (a run from a fresh process), and the idle point comes
 * after what a running flow has done: one small upload (three parts, so each sender has run),
 * WARM_UP_POLLS requests through the same client (a flow polling three tasks every 10 s makes as
 * many in under an hour), ~100 MB of short-lived garbage (a few objects surviving each scavenge,
 * so the young generation grows to the size a busy runtime gives it and is resident). The
 * warm-up's part buffers stay mapped until a GC frees them, so the measured upload's own buffers
 * (new ones) count in full.
 */
async function warmUp(upload?: (file: string) => Promise<unknown>, poll?: () => Promise<unknown>): Promise<void> {
  if (process.env.BENCH_UPLOAD_FRESH === '1') return;
  if (upload) {
    const file = path.join(os.tmpdir(), `labwire-bench-warm-up-${process.pid}.bin`);
    makeRandomFile(file, 2 * PART_SIZE + 1);
    try {
      await upload(file);
    } finally {
      fs.rmSync(file, { force: true });
    }
  }
  if (poll) for (let i = 0; i < WARM_UP_POLLS; i++) await poll();
  let garbage: Array<{ n: number; s: string }> = [];
  for (let i = 0; i < 2_000_000; i++) {
    garbage.push({ n: i, s: `warm-${i}` });
    if (garbage.length === 1000) garbage = [];
  }
}

/** Profiles only the upload (BENCH_UPLOAD_PROFILE=file.cpuprofile); returns the stop-and-save. */
async function startProfile(): Promise<(file: string) => Promise<void>> {
  const inspector = require('inspector') as typeof import('inspector');
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => session.post(method, params ?? {}, (e, r) => (e ? reject(e) : resolve(r))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: Number(process.env.BENCH_PROFILE_INTERVAL_US || 200) });
  await post('Profiler.start');
  return async (file) => {
    const r = (await post('Profiler.stop')) as { profile: unknown };
    fs.writeFileSync(file, JSON.stringify(r.profile));
    session.disconnect();
  };
}

async function roleSim(limited = false): Promise<void> {
  const { startLabSimulator } = require('../simulator') as typeof import('../simulator');
  // limited: the simulator's default limit (60 / 30 s), as Benchling's documented default.
  const sim = await startLabSimulator({ benchling: limited ? { port: 0 } : { port: 0, rateLimit: false } });
  process.on('message', (raw) => {
    const m = raw as { type: string; id?: string };
    if (m.type === 'getBlob') void send({ type: 'blob', blob: sim.benchling.getBlob(m.id ?? '') ?? null });
    else if (m.type === 'counters') void send({ type: 'counters', rateLimited: sim.benchling.counters.rateLimited });
    else if (m.type === 'cpu') {
      const c = process.cpuUsage();
      void send({ type: 'cpu', us: c.user + c.system });
    } else if (m.type === 'close') {
      void sim.close().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => void sim.close().then(() => process.exit(0)));
  await send({ type: 'ready', apiBase: sim.benchling.apiBase, apiKey: sim.benchling.apiKeys[0] });
}

/** The unavoidable work: the same reads, each part's MD5, the base64 of every byte. */
async function roleBaseline(file: string): Promise<void> {
  const size = fs.statSync(file).size;
  const s = measureStart();
  let base64Chars = 0;
  const md5s: string[] = [];
  for (let start = 0; start < size; start += PART_SIZE) {
    const length = Math.min(PART_SIZE, size - start);
    const hash = createHash('md5');
    const stream = fs.createReadStream(file, { start, end: start + length - 1, highWaterMark: CHUNK_SIZE });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      base64Chars += chunk.toString('base64').length;
    }
    md5s.push(hash.digest('hex'));
  }
  const r = measureEnd(s);
  await send({ type: 'result', ...r, base64Chars, parts: md5s.length });
}

async function roleUpload(file: string, apiBase: string, apiKey: string): Promise<void> {
  const { BenchlingClient } = require('../nodes/clients/benchling/client') as typeof import('../nodes/clients/benchling/client');
  const client = new BenchlingClient({
    tenantUrl: apiBase,
    apiKey,
    rateLimit: { limit: 0, windowMs: 1000 }, // no client-side window: the sim's limit is off too
    network: { noProxy: true },
    timeoutMs: 300_000,
  });
  // Warm-up: one small request (404) opens the keep-alive connection and loads what axios and
  // Node load lazily on first use, as in a long-running flow; then start-up settles.
  await client.http.request({ method: 'GET', path: '/blobs/bench-warm-up' }).catch(() => undefined);
  let warmBlobId = '';
  await warmUp(
    async (file) => (warmBlobId = (await client.uploadFile(file, { name: 'warm-up.bin' })).blob.id),
    () => client.http.request({ method: 'GET', path: `/blobs/${warmBlobId}` }),
  );
  // One full GC before idle (the bench starts this role with --expose-gc): the warm-up's part
  // buffers and garbage are freed now, not during the upload, where they would lower its peak.
  // Context runs only (see benchUploadBlob): a full GC every BENCH_GC_EVERY_MS as well.
  const gc = (globalThis as { gc?: () => void }).gc;
  const gcEveryMs = process.env.BENCH_GC_EVERY_MS && gc ? Number(process.env.BENCH_GC_EVERY_MS) : 0;
  gc?.();
  await new Promise((r) => setTimeout(r, 200));
  resetVmHwm();
  const idleRss = process.memoryUsage.rss();
  let sampledPeak = idleRss;
  const trace = process.env.BENCH_RSS_TRACE === '1';
  const t0 = Date.now();
  const sampler = setInterval(() => {
    const rss = process.memoryUsage.rss();
    if (rss > sampledPeak) {
      sampledPeak = rss;
      if (trace) {
        const spaces = require('v8').getHeapSpaceStatistics() as Array<{ space_name: string; physical_space_size: number }>;
        process.stderr.write(`rss-trace ${Date.now() - t0} ms +${((rss - idleRss) / MiB).toFixed(1)} MiB  ${spaces.map((x) => `${x.space_name.replace('_space', '')} ${(x.physical_space_size / MiB).toFixed(1)}`).join(' ')}  ext ${(process.memoryUsage().external / MiB).toFixed(1)}\n`);
      }
    }
  }, 20);
  const profile = process.env.BENCH_UPLOAD_PROFILE ? await startProfile() : undefined;
  const gcTimer = gcEveryMs ? setInterval(() => gc?.(), gcEveryMs) : undefined;
  const s = measureStart();
  // BENCH_PARTS_IN_PARALLEL: the node's "Parts at once" setting (default: the node's default).
  const partsInParallel = process.env.BENCH_PARTS_IN_PARALLEL ? Number(process.env.BENCH_PARTS_IN_PARALLEL) : undefined;
  const result = await client.uploadFile(file, { name: path.basename(file), partsInParallel });
  const r = measureEnd(s);
  if (gcTimer) clearInterval(gcTimer);
  if (profile) await profile(process.env.BENCH_UPLOAD_PROFILE as string);
  clearInterval(sampler);
  const finalRss = process.memoryUsage.rss();
  if (finalRss > sampledPeak) sampledPeak = finalRss;
  const hwm = vmHwmBytes();
  client.close();
  const out: UploadChildResult = { ...r, idleRss, sampledPeak, hwm, blobId: result.blob.id, status: result.blob.uploadStatus, parts: result.parts };
  await send({ type: 'result', ...out });
}

/** CPU of `md5sum` and `base64` over the file, as the shell counts its children (`times`). */
function nativeBaseline(file: string): CpuWall {
  const t = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', 'md5sum -- "$1" >/dev/null && base64 -- "$1" >/dev/null && times', 'bench', file], { encoding: 'utf8' });
  const wallMs = Number(process.hrtime.bigint() - t) / 1e6;
  const line = (r.stdout ?? '').trim().split('\n')[1] ?? '';
  const m = /(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/.exec(line);
  if (r.status !== 0 || !m) throw new Error(`native baseline (md5sum, base64, bash times) failed: ${r.error?.message ?? r.stderr ?? r.stdout}`);
  const us = (min: string, sec: string) => Math.round((Number(min) * 60 + Number(sec)) * 1e6);
  return { cpuUserUs: us(m[1], m[2]), cpuSysUs: us(m[3], m[4]), wallMs };
}

/**
 * The naive reference: plain `http`, 10 MB parts each read whole, MD5 and base64 of the whole
 * part, one JSON string per part written with `end(body)`, two parts in flight.
 */
async function roleNaive(file: string, apiBase: string, apiKey: string): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: NAIVE_IN_FLIGHT });
  const authorization = `Basic ${Buffer.from(`${apiKey}:`).toString('base64')}`;
  const call = <T>(method: string, p: string, body?: string) =>
    new Promise<T>((resolve, reject) => {
      const headers: Record<string, string | number> = { authorization, accept: 'application/json' };
      if (body !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      const req = http.request(apiBase + p, { method, agent, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => ((res.statusCode ?? 0) < 300 ? resolve((text ? JSON.parse(text) : {}) as T) : reject(new Error(`${method} ${p}: ${res.statusCode} ${text.slice(0, 200)}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
  await call('GET', '/blobs/bench-warm-up').catch(() => undefined);
  await warmUp(undefined, () => call('GET', '/blobs/bench-warm-up').catch(() => undefined));
  await new Promise((r) => setTimeout(r, 200));
  resetVmHwm();
  const idleRss = process.memoryUsage.rss();
  let sampledPeak = idleRss;
  const sampler = setInterval(() => (sampledPeak = Math.max(sampledPeak, process.memoryUsage.rss())), 20);
  const s = measureStart();
  const size = fs.statSync(file).size;
  const started = await call<{ id: string }>('POST', '/blobs:start-multipart-upload', JSON.stringify({ name: path.basename(file), type: 'RAW_FILE', mimeType: 'application/octet-stream' }));
  const count = Math.ceil(size / NAIVE_PART_SIZE);
  const parts: Array<{ partNumber: number; eTag: string }> = [];
  const fd = fs.openSync(file, 'r');
  let next = 0;
  const sender = async () => {
    while (next < count) {
      const i = next++;
      const length = Math.min(NAIVE_PART_SIZE, size - i * NAIVE_PART_SIZE);
      const buf = Buffer.allocUnsafe(length);
      fs.readSync(fd, buf, 0, length, i * NAIVE_PART_SIZE);
      const body = JSON.stringify({ partNumber: i + 1, data64: buf.toString('base64'), md5: createHash('md5').update(buf).digest('hex') });
      const r = await call<{ partNumber: number; eTag: string }>('POST', `/blobs/${started.id}/parts`, body);
      parts[i] = { partNumber: r.partNumber, eTag: r.eTag };
    }
  };
  await Promise.all(Array.from({ length: NAIVE_IN_FLIGHT }, sender));
  fs.closeSync(fd);
  const done = await call<{ id: string; uploadStatus: string }>('POST', `/blobs/${started.id}:complete-upload`, JSON.stringify({ parts }));
  const r = measureEnd(s);
  clearInterval(sampler);
  const hwm = vmHwmBytes();
  agent.destroy();
  const out: UploadChildResult = { ...r, idleRss, sampledPeak, hwm, blobId: done.id, status: done.uploadStatus, parts: count };
  await send({ type: 'result', ...out });
}

interface FairChildResult {
  uploadWallMs: number;
  parts: number;
  blobId: string;
  /** Each poll's latency (issued → answered), ms. */
  polls: number[];
}

/**
 * A big upload under the tenant's limit while `pollers` other files' tasks are polled every
 * `intervalMs` (staggered), all through one client and so one governor, as in one flow.
 */
async function roleFair(file: string, apiBase: string, apiKey: string, pollers: number, intervalMs: number): Promise<void> {
  const { BenchlingClient } = require('../nodes/clients/benchling/client') as typeof import('../nodes/clients/benchling/client');
  const { SEED } = require('../simulator') as typeof import('../simulator');
  // The pack's default limit (the documented 60 / 30 s), as the simulator enforces it.
  const client = new BenchlingClient({ tenantUrl: apiBase, apiKey, network: { noProxy: true }, timeoutMs: 300_000 });
  const { blob } = await client.uploadBuffer(Buffer.from('well,od\nA1,0.1\n'), { name: 'fair.csv' });
  const proc = await client.createOutputProcessor({ assayRunId: SEED.runs[0].id, automationFileConfigName: SEED.outputConfigName, fileId: blob.id });
  const taskId = await client.processOutput(proc.id);
  const polls: number[] = [];
  let uploading = true;
  const poller = async (k: number) => {
    await new Promise((r) => setTimeout(r, (k * intervalMs) / pollers));
    while (uploading) {
      const t = Date.now();
      await client.http.request({ method: 'GET', path: `/tasks/${encodeURIComponent(taskId)}` });
      if (uploading) polls.push(Date.now() - t);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  };
  const t0 = Date.now();
  const pollersDone = Promise.all(Array.from({ length: pollers }, (_, k) => poller(k)));
  const result = await client.uploadFile(file, { name: path.basename(file) });
  const uploadWallMs = Date.now() - t0;
  uploading = false;
  await pollersDone;
  client.close();
  const out: FairChildResult = { uploadWallMs, parts: result.parts, blobId: result.blob.id, polls };
  await send({ type: 'result', ...out });
}

async function roleSink(): Promise<void> {
  const server = net.createServer((c) => {
    c.on('data', () => undefined);
    c.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.on('disconnect', () => process.exit(0));
  await send({ type: 'ready', port: (server.address() as net.AddressInfo).port });
}

/** Writes `total` bytes of ready-made Buffers (64 distinct ones, so not cache-hot) to the sink. */
async function roleSend(port: number, total: number): Promise<void> {
  const pool: Buffer[] = [];
  for (let i = 0; i < 64; i++) pool.push(Buffer.from(randomFillSync(Buffer.alloc(CHUNK_SIZE)).toString('base64'), 'latin1'));
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  const s = measureStart();
  for (let sent = 0, i = 0; sent < total; i++) {
    const b = pool[i % pool.length];
    const chunk = total - sent < b.length ? b.subarray(0, total - sent) : b;
    sent += chunk.length;
    if (!sock.write(chunk)) await new Promise((r) => sock.once('drain', r));
  }
  await new Promise<void>((r) => sock.end(r));
  const r = measureEnd(s);
  sock.destroy();
  await send({ type: 'result', ...r });
}

// ------------------------------------------------------------------------------ parent side

interface Child {
  proc: ChildProcess;
  next<T>(type: string): Promise<T>;
  post(m: unknown): void;
}

function startChild(args: string[], execArgv: string[] = [], env?: NodeJS.ProcessEnv): Child {
  const proc = fork(__filename, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv, env: env ?? process.env });
  const queue: Array<{ type: string; resolve: (m: unknown) => void; reject: (e: Error) => void }> = [];
  let exited: Error | null = null;
  const fail = (e: Error) => {
    exited = e;
    for (const w of queue.splice(0)) w.reject(e);
  };
  const inbox: Array<{ type: string }> = [];
  proc.on('message', (raw) => {
    const m = raw as { type: string };
    const i = queue.findIndex((w) => w.type === m.type);
    if (i >= 0) queue.splice(i, 1)[0].resolve(m);
    else inbox.push(m);
  });
  proc.on('error', fail);
  proc.on('exit', (code, sig) => fail(new Error(`bench child ${args[1]} exited (${sig ?? code})`)));
  return {
    proc,
    post: (m) => proc.send(m as object),
    next<T>(type: string): Promise<T> {
      const early = inbox.findIndex((m) => m.type === type);
      if (early >= 0) return Promise.resolve(inbox.splice(early, 1)[0] as T);
      if (exited) return Promise.reject(exited);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`bench child ${args[1]}: no ${type} within ${CHILD_TIMEOUT_MS / 60000} min`)), CHILD_TIMEOUT_MS);
        queue.push({
          type,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m as T);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
      });
    },
  };
}

async function stopChild(c: Child, closeMessage?: unknown): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  const exited = new Promise((r) => c.proc.once('exit', r));
  if (closeMessage) c.post(closeMessage);
  else if (c.proc.connected) c.proc.disconnect();
  // Let it exit by itself (a --cpu-prof profile is written at exit); kill it if it lingers.
  const timer = setTimeout(() => c.proc.kill(), 10_000);
  await exited;
  clearTimeout(timer);
}

async function runOnce<T>(args: string[], execArgv: string[] = [], env?: NodeJS.ProcessEnv): Promise<T> {
  const c = startChild(args, execArgv, env);
  try {
    return await c.next<T>('result');
  } finally {
    await stopChild(c);
  }
}

/** Writes `bytes` random bytes; returns the file's hex MD5. */
function makeRandomFile(file: string, bytes: number): string {
  const fd = fs.openSync(file, 'w');
  const hash = createHash('md5');
  const buf = Buffer.allocUnsafe(8 * MiB);
  try {
    for (let done = 0; done < bytes; ) {
      const n = Math.min(buf.length, bytes - done);
      const view = buf.subarray(0, n);
      randomFillSync(view);
      hash.update(view);
      fs.writeSync(fd, view);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** Bytes of all part bodies: `{"partNumber":n,"data64":"…","md5":"<32 hex>"}`. */
function wireBytes(size: number): number {
  let total = 0;
  for (let n = 1, start = 0; start < size; n++, start += PART_SIZE) {
    total += `{"partNumber":${n},"data64":"`.length + base64Length(Math.min(PART_SIZE, size - start)) + '","md5":"'.length + 32 + '"}'.length;
  }
  return total;
}

export function formatBytes(bytes: number): string {
  if (bytes % (1024 * MiB) === 0) return `${bytes / (1024 * MiB)} GiB`;
  if (bytes % MiB === 0) return `${bytes / MiB} MiB`;
  return `${bytes} B`;
}

/** `100M` → 100 MiB, `1G` → 1 GiB, `5000000` → bytes. */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$/i.exec(s);
  if (!m) throw new Error(`bad size "${s}" (expected e.g. 100M, 1G, 20000000)`);
  const mult = { '': 1, k: 1024, m: MiB, g: 1024 * MiB }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = Math.round(Number(m[1]) * mult);
  if (n <= 0) throw new Error(`bad size "${s}"`);
  return n;
}

const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export interface UploadBenchOptions {
  /** File sizes in bytes; default 100 MiB and 1 GiB. */
  sizes?: number[];
  /** Measurements per size; default 3 up to 256 MiB, 1 above. */
  repeats?: number;
  log?: (line: string) => void;
  /** Write a --cpu-prof profile of every upload process into this folder. */
  cpuProfDir?: string;
}

export async function benchUploadBlob(opts: UploadBenchOptions = {}): Promise<UploadBenchResult[]> {
  const sizes = opts.sizes ?? [100 * MiB, 1024 * MiB];
  const log = opts.log ?? ((l: string) => console.log(l));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'labwire-bench-upload-'));
  const sim = startChild(['--role', 'sim']);
  const sink = startChild(['--role', 'sink']);
  const results: UploadBenchResult[] = [];
  try {
    const ready = await sim.next<{ apiBase: string; apiKey: string }>('ready');
    const sinkPort = (await sink.next<{ port: number }>('ready')).port;
    for (const bytes of sizes) {
      const label = formatBytes(bytes);
      const repeats = opts.repeats ?? 3;
      const file = path.join(dir, `bench-${bytes}.bin`);
      log(`upload ${label}: writing ${bytes} random bytes to ${file}`);
      const fileMd5 = makeRandomFile(file, bytes);
      try {
        const bases: CpuWall[] = [];
        const natives: CpuWall[] = [];
        const naives: UploadChildResult[] = [];
        const ups: UploadChildResult[] = [];
        const simCpus: number[] = [];
        let verifyDetail = '';
        for (let k = 0; k < repeats; k++) {
          const tag = repeats > 1 ? ` (${k + 1}/${repeats})` : '';
          log(`upload ${label}${tag}: baseline (read + per-part MD5 + base64) in a fresh process`);
          bases.push(await runOnce<CpuWall>(['--role', 'baseline', file]));
          log(`upload ${label}${tag}: native md5sum + base64`);
          natives.push(nativeBaseline(file));
          log(`upload ${label}${tag}: naive reference uploader (${NAIVE_PART_SIZE / 1e6} MB parts, ${NAIVE_IN_FLIGHT} in flight) in a fresh process`);
          const naive = await runOnce<UploadChildResult>(['--role', 'naive', file, ready.apiBase, ready.apiKey]);
          sim.post({ type: 'getBlob', id: naive.blobId });
          const naiveBlob = (await sim.next<{ blob: { uploadStatus: string; md5?: string; size?: number } | null }>('blob')).blob;
          if (!naiveBlob || naiveBlob.uploadStatus !== 'COMPLETE' || naiveBlob.md5 !== fileMd5 || naiveBlob.size !== bytes) {
            throw new Error(`naive upload ${label} was not stored correctly: ${JSON.stringify(naiveBlob)}`);
          }
          naives.push(naive);
          log(`upload ${label}${tag}: uploadFile in a fresh process`);
          sim.post({ type: 'cpu' });
          const simCpu0 = (await sim.next<{ us: number }>('cpu')).us;
          const profArgs = opts.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', opts.cpuProfDir] : [];
          const up = await runOnce<UploadChildResult>(['--role', 'upload', file, ready.apiBase, ready.apiKey], [...profArgs, '--expose-gc']);
          sim.post({ type: 'cpu' });
          simCpus.push((await sim.next<{ us: number }>('cpu')).us - simCpu0);
          sim.post({ type: 'getBlob', id: up.blobId });
          const blob = (await sim.next<{ blob: { uploadStatus: string; md5?: string; size?: number; parts: unknown[] } | null }>('blob')).blob;
          const verified = !!blob && blob.uploadStatus === 'COMPLETE' && blob.md5 === fileMd5 && blob.size === bytes;
          verifyDetail = blob
            ? `sim blob ${up.blobId}: ${blob.uploadStatus}, md5 ${blob.md5} (file ${fileMd5}), size ${blob.size} (file ${bytes}), ${blob.parts.length} parts`
            : `sim has no blob ${up.blobId}`;
          if (!verified) throw new Error(`upload ${label} was not stored correctly: ${verifyDetail}`);
          log(`upload ${label}${tag}: verified — ${verifyDetail}`);
          ups.push(up);
        }
        // Context: how much of the peak is garbage not yet collected. One more run with a full GC
        // every 200 ms (--expose-gc): what is left is the memory the upload really holds.
        log(`upload ${label}: uploadFile once more, collecting garbage every 200 ms (context)`);
        const collected = await runOnce<UploadChildResult>(['--role', 'upload', file, ready.apiBase, ready.apiKey], ['--expose-gc'], { ...process.env, BENCH_GC_EVERY_MS: '200' });
        const collectedPeak = (Math.max(collected.sampledPeak, collected.hwm) - collected.idleRss) / MiB;
        // Context: the first upload after a start, idle taken in a fresh process (see warmUp).
        log(`upload ${label}: uploadFile once more from a fresh process, no warm-up (context)`);
        const fresh = await runOnce<UploadChildResult>(['--role', 'upload', file, ready.apiBase, ready.apiKey], [], { ...process.env, BENCH_UPLOAD_FRESH: '1' });
        const freshPeak = (Math.max(fresh.sampledPeak, fresh.hwm) - fresh.idleRss) / MiB;
        const wire = wireBytes(bytes);
        log(`upload ${label}: loopback send of ${wire} bytes (context)`);
        const sendRun = await runOnce<CpuWall>(['--role', 'send', String(sinkPort), String(wire)]);

        const cpu = (c: CpuWall) => (c.cpuUserUs + c.cpuSysUs) / 1e6;
        const peakOf = (u: UploadChildResult) => Math.max(u.sampledPeak, u.hwm) - u.idleRss;
        const worst = ups.reduce((a, b) => (peakOf(b) > peakOf(a) ? b : a));
        const uploadCpuS = median(ups.map(cpu));
        const baselineCpuS = median(bases.map(cpu));
        const nativeCpuS = median(natives.map(cpu));
        const naiveWallS = median(naives.map((u) => u.wallMs / 1000));
        const naiveWorst = naives.reduce((a, b) => (peakOf(b) > peakOf(a) ? b : a));
        // Ratios pair the runs measured side by side (same moment, same load), then the median.
        const cpuRatio = median(ups.map((u, i) => cpu(u) / cpu(natives[i])));
        const wallRatio = median(ups.map((u, i) => u.wallMs / naives[i].wallMs));
        const sendCpuS = cpu(sendRun);
        const wallS = median(ups.map((u) => u.wallMs / 1000));
        const peakMiB = peakOf(worst) / MiB;
        results.push({
          label,
          bytes,
          parts: ups[0].parts,
          repeats,
          wallS: round(wallS),
          mibPerS: round(bytes / MiB / wallS, 1),
          uploadCpuS: round(uploadCpuS),
          uploadUserS: round(median(ups.map((u) => u.cpuUserUs / 1e6))),
          uploadSysS: round(median(ups.map((u) => u.cpuSysUs / 1e6))),
          nativeCpuS: round(nativeCpuS),
          nativeUserS: round(median(natives.map((b) => b.cpuUserUs / 1e6))),
          nativeSysS: round(median(natives.map((b) => b.cpuSysUs / 1e6))),
          cpuRatio: round(cpuRatio),
          baselineCpuS: round(baselineCpuS),
          baselineUserS: round(median(bases.map((b) => b.cpuUserUs / 1e6))),
          baselineSysS: round(median(bases.map((b) => b.cpuSysUs / 1e6))),
          baselineWallS: round(median(bases.map((b) => b.wallMs / 1000))),
          cpuRatioVsNode: round(uploadCpuS / baselineCpuS),
          naiveWallS: round(naiveWallS),
          naiveCpuS: round(median(naives.map(cpu))),
          naivePeakAboveIdleMiB: round(peakOf(naiveWorst) / MiB, 1),
          wallRatio: round(wallRatio),
          wallPass: wallRatio <= WALL_RATIO_TARGET,
          wireBytes: wire,
          loopbackSendCpuS: round(sendCpuS),
          cpuRatioWithSend: round(uploadCpuS / (baselineCpuS + sendCpuS)),
          idleRssMiB: round(worst.idleRss / MiB, 1),
          peakAboveIdleMiB: round(peakMiB, 1),
          sampledPeakAboveIdleMiB: round((worst.sampledPeak - worst.idleRss) / MiB, 1),
          hwmAboveIdleMiB: round((worst.hwm - worst.idleRss) / MiB, 1),
          simCpuS: round(median(simCpus) / 1e6),
          verified: true,
          verifyDetail,
          cpuPass: cpuRatio <= CPU_RATIO_TARGET,
          rssPass: peakMiB <= RSS_TARGET_MIB,
          collectedPeakAboveIdleMiB: round(collectedPeak, 1),
          freshPeakAboveIdleMiB: round(freshPeak, 1),
          runs: ups.map((u, i) => ({
            uploadCpuS: round(cpu(u)),
            nativeCpuS: round(cpu(natives[i])),
            baselineCpuS: round(cpu(bases[i])),
            wallS: round(u.wallMs / 1000),
            naiveWallS: round(naives[i].wallMs / 1000),
            peakAboveIdleMiB: round(peakOf(u) / MiB, 1),
          })),
        });
      } finally {
        fs.rmSync(file, { force: true });
      }
    }
  } finally {
    await Promise.all([stopChild(sim, { type: 'close' }), stopChild(sink)]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

export function printUploadResults(results: UploadBenchResult[], log: (line: string) => void = (l) => console.log(l)): void {
  const cols: Array<[string, number, (r: UploadBenchResult) => string]> = [
    ['size', 8, (r) => r.label],
    ['runs', 4, (r) => String(r.repeats)],
    ['wall s', 7, (r) => r.wallS.toFixed(2)],
    ['naive wall s', 12, (r) => r.naiveWallS.toFixed(2)],
    ['MiB/s', 6, (r) => r.mibPerS.toFixed(1)],
    ['upload CPU s (usr/sys)', 22, (r) => `${r.uploadCpuS.toFixed(2)} (${r.uploadUserS.toFixed(2)}/${r.uploadSysS.toFixed(2)})`],
    ['native CPU s (usr/sys)', 22, (r) => `${r.nativeCpuS.toFixed(2)} (${r.nativeUserS.toFixed(2)}/${r.nativeSysS.toFixed(2)})`],
    ['CPU ratio', 9, (r) => r.cpuRatio.toFixed(2)],
    ['node base CPU s', 15, (r) => r.baselineCpuS.toFixed(2)],
    ['vs node', 7, (r) => r.cpuRatioVsNode.toFixed(2)],
    ['loopback send CPU s', 19, (r) => r.loopbackSendCpuS.toFixed(2)],
    ['peak-idle MiB', 13, (r) => r.peakAboveIdleMiB.toFixed(1)],
    ['naive peak-idle', 15, (r) => r.naivePeakAboveIdleMiB.toFixed(1)],
    ['sim CPU s', 9, (r) => r.simCpuS.toFixed(2)],
  ];
  log(cols.map(([h, w]) => h.padStart(w)).join('  '));
  for (const r of results) log(cols.map(([, w, f]) => f(r).padStart(w)).join('  '));
  const runs = (r: UploadBenchResult, f: (x: UploadBenchResult['runs'][number]) => string) => r.runs.map(f).join(', ');
  for (const r of results) {
    log(
      `${r.cpuPass ? 'PASS' : 'MISS'} upload ${r.label}: CPU upload ÷ native md5sum+base64 = ${r.cpuRatio.toFixed(2)} (median of ${r.repeats} paired runs: ${runs(r, (x) => (x.uploadCpuS / x.nativeCpuS).toFixed(2))}; target ≤ ${CPU_RATIO_TARGET}; vs a Node baseline ${r.cpuRatioVsNode.toFixed(2)})`,
    );
    log(
      `${r.wallPass ? 'PASS' : 'MISS'} upload ${r.label}: wall upload ÷ naive two-in-flight = ${r.wallRatio.toFixed(2)} (median of ${r.repeats} paired runs: ${runs(r, (x) => (x.wallS / x.naiveWallS).toFixed(2))}; target ≤ ${WALL_RATIO_TARGET})`,
    );
    log(
      `${r.rssPass ? 'PASS' : 'MISS'} upload ${r.label}: peak RSS above idle = ${r.peakAboveIdleMiB.toFixed(1)} MiB (worst of ${r.repeats}; sampled ${r.sampledPeakAboveIdleMiB.toFixed(1)}, VmHWM ${r.hwmAboveIdleMiB.toFixed(1)}; target ≤ ${RSS_TARGET_MIB} MiB; idle: ${IDLE_KIND})`,
    );
  }
  if (results.length > 1) {
    const peaks = results.map((r) => r.peakAboveIdleMiB);
    const spread = Math.max(...peaks) - Math.min(...peaks);
    log(
      `${spread <= RSS_SPREAD_TARGET_MIB ? 'PASS' : 'MISS'} upload: peak RSS above idle is the same whatever the size: ${results.map((r) => `${r.label} ${r.peakAboveIdleMiB.toFixed(1)}`).join(' vs ')} MiB (spread ${spread.toFixed(1)}; target ≤ ${RSS_SPREAD_TARGET_MIB} MiB; idle: ${IDLE_KIND})`,
    );
    const held = results.map((r) => r.collectedPeakAboveIdleMiB);
    log(
      `context: with garbage collected every 200 ms (one run each): ${results.map((r, i) => `${r.label} ${held[i].toFixed(1)}`).join(' vs ')} MiB (spread ${(Math.max(...held) - Math.min(...held)).toFixed(1)}) — what the upload holds, without the garbage not yet collected that a longer upload accumulates between GCs (a GC also shrinks V8's young generation, so this can come out below the part buffers)`,
    );
    const fresh = results.map((r) => r.freshPeakAboveIdleMiB);
    log(
      `context: the first upload after a start, idle in a fresh process (one run each): ${results.map((r, i) => `${r.label} ${fresh[i].toFixed(1)}`).join(' vs ')} MiB (spread ${(Math.max(...fresh) - Math.min(...fresh)).toFixed(1)}) — a longer upload also pays, once per process, for V8 compiling the request path's code and for its young generation becoming resident`,
    );
  }
}

function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}

export interface FairBenchOptions {
  /** File size; default 1 GiB. */
  size?: number;
  /** Files whose tasks are polled during the upload; default 2. */
  pollers?: number;
  /** Each poller's interval, ms; default 5000 (benchling-poll-task's default interval). */
  pollIntervalMs?: number;
  log?: (line: string) => void;
}

/** Task polls during a big upload under the tenant's limit (see the role `fair`). */
export async function benchPollDuringUpload(opts: FairBenchOptions = {}): Promise<FairBenchResult> {
  const size = opts.size ?? 1024 * MiB;
  const pollers = opts.pollers ?? 2;
  const intervalMs = opts.pollIntervalMs ?? 5000;
  const log = opts.log ?? ((l: string) => console.log(l));
  const label = formatBytes(size);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'labwire-bench-fair-'));
  const sim = startChild(['--role', 'sim', 'limited']);
  try {
    const ready = await sim.next<{ apiBase: string; apiKey: string }>('ready');
    const file = path.join(dir, `fair-${size}.bin`);
    log(`fair ${label}: writing ${size} random bytes`);
    const fileMd5 = makeRandomFile(file, size);
    log(`fair ${label}: upload under 60 requests / 30 s while ${pollers} tasks are polled every ${intervalMs / 1000} s`);
    const r = await runOnce<FairChildResult>(['--role', 'fair', file, ready.apiBase, ready.apiKey, String(pollers), String(intervalMs)]);
    sim.post({ type: 'getBlob', id: r.blobId });
    const blob = (await sim.next<{ blob: { uploadStatus: string; md5?: string; size?: number } | null }>('blob')).blob;
    const verified = !!blob && blob.uploadStatus === 'COMPLETE' && blob.md5 === fileMd5 && blob.size === size;
    if (!verified) throw new Error(`fair upload ${label} was not stored correctly: ${JSON.stringify(blob)}`);
    sim.post({ type: 'counters' });
    const { rateLimited } = await sim.next<{ rateLimited: number }>('counters');
    const p95 = quantile(r.polls, 0.95) / 1000;
    return {
      label,
      limit: '60 / 30 s',
      uploadWallS: round(r.uploadWallMs / 1000, 1),
      parts: r.parts,
      pollers,
      pollIntervalS: intervalMs / 1000,
      polls: r.polls.length,
      pollP50S: round(quantile(r.polls, 0.5) / 1000),
      pollP95S: round(p95),
      pollMaxS: round(Math.max(...r.polls) / 1000),
      rateLimited429: rateLimited,
      verified,
      pass: r.polls.length > 0 && p95 <= POLL_P95_TARGET_S,
    };
  } finally {
    await stopChild(sim, { type: 'close' });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function printFairResult(r: FairBenchResult, log: (line: string) => void = (l) => console.log(l)): void {
  log(
    `  ${r.label} uploaded in ${r.uploadWallS} s under ${r.limit} (${r.parts} parts, ${r.rateLimited429} × 429); ${r.polls} task polls (${r.pollers} tasks every ${r.pollIntervalS} s): p50 ${r.pollP50S} s, p95 ${r.pollP95S} s, max ${r.pollMaxS} s`,
  );
  log(`${r.pass ? 'PASS' : 'MISS'} upload-fairness: task poll latency during a ${r.label} upload under the limit, p95 = ${r.pollP95S} s (target ≤ ${POLL_P95_TARGET_S} s)`);
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--role') {
    if (argv[1] === 'sim') return roleSim(argv[2] === 'limited');
    if (argv[1] === 'naive') return roleNaive(argv[2], argv[3], argv[4]);
    if (argv[1] === 'fair') return roleFair(argv[2], argv[3], argv[4], Number(argv[5]), Number(argv[6]));
    if (argv[1] === 'sink') return roleSink();
    if (argv[1] === 'baseline') return roleBaseline(argv[2]);
    if (argv[1] === 'upload') return roleUpload(argv[2], argv[3], argv[4]);
    if (argv[1] === 'send') return roleSend(Number(argv[2]), Number(argv[3]));
    throw new Error(`unknown role ${argv[1]}`);
  }
  const fairAt = argv.indexOf('--fair');
  const fairSize = fairAt >= 0 ? parseSize(argv[fairAt + 1] ?? '1G') : undefined;
  const rest = fairAt >= 0 ? argv.slice(0, fairAt) : argv;
  // `none`: only the fairness run.
  const sizes = rest[0] === 'none' ? [] : rest[0] ? rest[0].split(',').filter(Boolean).map(parseSize) : undefined;
  const repeats = rest[1] ? Number(rest[1]) : undefined;
  if (!sizes || sizes.length) {
    const results = await benchUploadBlob({ sizes, repeats, cpuProfDir: process.env.BENCH_CPU_PROF_DIR });
    printUploadResults(results);
  }
  if (fairSize) printFairResult(await benchPollDuringUpload({ size: fairSize }));
}

if (require.main === module) {
  const role = process.argv[2] === '--role' ? process.argv[3] : undefined;
  main(process.argv.slice(2)).then(
    () => {
      // One-shot children leave once their result is sent; sim and sink stay until told.
      if (role && role !== 'sim' && role !== 'sink') process.disconnect?.();
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
