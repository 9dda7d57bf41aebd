/**
 * Benchmark: uploading a large file as a Benchling blob (multipart, streamed parts) to the lab
 * simulator, against a baseline that does only the work the upload cannot avoid.
 *
 * Each role runs in its own child process, so that no figure includes another's CPU or memory:
 *   sim      — the Benchling simulator (rate limit off); answers blob look-ups over IPC.
 *   baseline — reads the file in the same parts and chunks as the upload and computes each
 *              part's MD5 and the base64 of every byte (then throws the text away).
 *   upload   — BenchlingClient.uploadFile(file); idle RSS is taken after the client is loaded and
 *              before the upload; RSS is sampled every 20 ms and VmHWM is read at the end.
 *   send     — (context only) writes as many bytes as the upload puts on the wire, from ready-made
 *              Buffers, to a `sink` process over loopback TCP: the kernel's share of the upload.
 * After every upload the blob is checked in the simulator: COMPLETE, with the file's MD5 and size.
 *
 * Small sizes (≤ 256 MiB) are measured 3 times (fresh processes each time) and the medians are
 * reported; peak RSS is the worst of the repeats.
 *
 * Targets: upload CPU ÷ baseline CPU ≤ 1.3; peak RSS above idle ≤ 64 MiB (every size).
 *
 *   node dist/bench/upload-blob.js [100M,1G] [repeats]
 */
import { fork, ChildProcess } from 'child_process';
import { createHash, randomFillSync } from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { base64Length, CHUNK_SIZE, PART_SIZE } from '../nodes/clients/benchling/blob-upload';

export const CPU_RATIO_TARGET = 1.3;
export const RSS_TARGET_MIB = 64;
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
  baselineCpuS: number;
  baselineUserS: number;
  baselineSysS: number;
  baselineWallS: number;
  /** uploadCpuS ÷ baselineCpuS — the target. */
  cpuRatio: number;
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
  /** Every repeat's raw figures. */
  runs: Array<{ uploadCpuS: number; baselineCpuS: number; wallS: number; peakAboveIdleMiB: number }>;
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

function vmHwmBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
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
  await post('Profiler.setSamplingInterval', { interval: 200 });
  await post('Profiler.start');
  return async (file) => {
    const r = (await post('Profiler.stop')) as { profile: unknown };
    fs.writeFileSync(file, JSON.stringify(r.profile));
    session.disconnect();
  };
}

async function roleSim(): Promise<void> {
  const { startLabSimulator } = require('../simulator') as typeof import('../simulator');
  const sim = await startLabSimulator({ benchling: { port: 0, rateLimit: false } });
  process.on('message', (raw) => {
    const m = raw as { type: string; id?: string };
    if (m.type === 'getBlob') void send({ type: 'blob', blob: sim.benchling.getBlob(m.id ?? '') ?? null });
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
  await new Promise((r) => setTimeout(r, 200));
  const idleRss = process.memoryUsage.rss();
  let sampledPeak = idleRss;
  const sampler = setInterval(() => {
    const rss = process.memoryUsage.rss();
    if (rss > sampledPeak) sampledPeak = rss;
  }, 20);
  const profile = process.env.BENCH_UPLOAD_PROFILE ? await startProfile() : undefined;
  const s = measureStart();
  const result = await client.uploadFile(file, { name: path.basename(file) });
  const r = measureEnd(s);
  if (profile) await profile(process.env.BENCH_UPLOAD_PROFILE as string);
  clearInterval(sampler);
  const finalRss = process.memoryUsage.rss();
  if (finalRss > sampledPeak) sampledPeak = finalRss;
  const hwm = vmHwmBytes();
  client.close();
  const out: UploadChildResult = { ...r, idleRss, sampledPeak, hwm, blobId: result.blob.id, status: result.blob.uploadStatus, parts: result.parts };
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

function startChild(args: string[], execArgv: string[] = []): Child {
  const proc = fork(__filename, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
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

async function runOnce<T>(args: string[], execArgv: string[] = []): Promise<T> {
  const c = startChild(args, execArgv);
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
      const repeats = opts.repeats ?? (bytes <= 256 * MiB ? 3 : 1);
      const file = path.join(dir, `bench-${bytes}.bin`);
      log(`upload ${label}: writing ${bytes} random bytes to ${file}`);
      const fileMd5 = makeRandomFile(file, bytes);
      try {
        const bases: CpuWall[] = [];
        const ups: UploadChildResult[] = [];
        const simCpus: number[] = [];
        let verifyDetail = '';
        for (let k = 0; k < repeats; k++) {
          const tag = repeats > 1 ? ` (${k + 1}/${repeats})` : '';
          log(`upload ${label}${tag}: baseline (read + per-part MD5 + base64) in a fresh process`);
          bases.push(await runOnce<CpuWall>(['--role', 'baseline', file]));
          log(`upload ${label}${tag}: uploadFile in a fresh process`);
          sim.post({ type: 'cpu' });
          const simCpu0 = (await sim.next<{ us: number }>('cpu')).us;
          const profArgs = opts.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', opts.cpuProfDir] : [];
          const up = await runOnce<UploadChildResult>(['--role', 'upload', file, ready.apiBase, ready.apiKey], profArgs);
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
        const wire = wireBytes(bytes);
        log(`upload ${label}: loopback send of ${wire} bytes (context)`);
        const sendRun = await runOnce<CpuWall>(['--role', 'send', String(sinkPort), String(wire)]);

        const cpu = (c: CpuWall) => (c.cpuUserUs + c.cpuSysUs) / 1e6;
        const peakOf = (u: UploadChildResult) => Math.max(u.sampledPeak, u.hwm) - u.idleRss;
        const worst = ups.reduce((a, b) => (peakOf(b) > peakOf(a) ? b : a));
        const uploadCpuS = median(ups.map(cpu));
        const baselineCpuS = median(bases.map(cpu));
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
          baselineCpuS: round(baselineCpuS),
          baselineUserS: round(median(bases.map((b) => b.cpuUserUs / 1e6))),
          baselineSysS: round(median(bases.map((b) => b.cpuSysUs / 1e6))),
          baselineWallS: round(median(bases.map((b) => b.wallMs / 1000))),
          cpuRatio: round(uploadCpuS / baselineCpuS),
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
          cpuPass: uploadCpuS / baselineCpuS <= CPU_RATIO_TARGET,
          rssPass: peakMiB <= RSS_TARGET_MIB,
          runs: ups.map((u, i) => ({
            uploadCpuS: round(cpu(u)),
            baselineCpuS: round(cpu(bases[i])),
            wallS: round(u.wallMs / 1000),
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
    ['MiB/s', 6, (r) => r.mibPerS.toFixed(1)],
    ['upload CPU s (usr/sys)', 22, (r) => `${r.uploadCpuS.toFixed(2)} (${r.uploadUserS.toFixed(2)}/${r.uploadSysS.toFixed(2)})`],
    ['baseline CPU s (usr/sys)', 24, (r) => `${r.baselineCpuS.toFixed(2)} (${r.baselineUserS.toFixed(2)}/${r.baselineSysS.toFixed(2)})`],
    ['CPU ratio', 9, (r) => r.cpuRatio.toFixed(2)],
    ['loopback send CPU s', 19, (r) => r.loopbackSendCpuS.toFixed(2)],
    ['ratio vs base+send', 18, (r) => r.cpuRatioWithSend.toFixed(2)],
    ['peak-idle MiB', 13, (r) => r.peakAboveIdleMiB.toFixed(1)],
    ['idle MiB', 8, (r) => r.idleRssMiB.toFixed(1)],
    ['sim CPU s', 9, (r) => r.simCpuS.toFixed(2)],
  ];
  log(cols.map(([h, w]) => h.padStart(w)).join('  '));
  for (const r of results) log(cols.map(([, w, f]) => f(r).padStart(w)).join('  '));
  for (const r of results) {
    log(`${r.cpuPass ? 'PASS' : 'MISS'} upload ${r.label}: CPU upload ÷ baseline = ${r.cpuRatio.toFixed(2)} (target ≤ ${CPU_RATIO_TARGET})`);
    log(
      `${r.rssPass ? 'PASS' : 'MISS'} upload ${r.label}: peak RSS above idle = ${r.peakAboveIdleMiB.toFixed(1)} MiB (sampled ${r.sampledPeakAboveIdleMiB.toFixed(1)}, VmHWM ${r.hwmAboveIdleMiB.toFixed(1)}; target ≤ ${RSS_TARGET_MIB} MiB)`,
    );
  }
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--role') {
    if (argv[1] === 'sim') return roleSim();
    if (argv[1] === 'sink') return roleSink();
    if (argv[1] === 'baseline') return roleBaseline(argv[2]);
    if (argv[1] === 'upload') return roleUpload(argv[2], argv[3], argv[4]);
    if (argv[1] === 'send') return roleSend(Number(argv[2]), Number(argv[3]));
    throw new Error(`unknown role ${argv[1]}`);
  }
  const sizes = argv[0] ? argv[0].split(',').map(parseSize) : undefined;
  const repeats = argv[1] ? Number(argv[1]) : undefined;
  const results = await benchUploadBlob({ sizes, repeats, cpuProfDir: process.env.BENCH_CPU_PROF_DIR });
  printUploadResults(results);
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
