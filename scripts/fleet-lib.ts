/**
 * Many lab PCs, one Benchling tenant (used by scripts/fleet.ts — `npm run fleet` — and by
 * test/fleet.test.ts): the simulator keeps ONE tenant-wide window (60 per 30 s by default), and N
 * real `node-red` processes, each running example 01 on its own watched folder and user directory
 * (as N lab PCs would), get their files at the same moment. Counted from the simulator: files done,
 * duplicates, the 429s its limiter sent, and the aggregate files per minute against the bound the
 * limit allows (limit per minute ÷ requests per file).
 *
 * Two ways to share the budget: `headers` (the default: every process paces itself by the rate
 * headers) and `redis` (a real Debian `redis-server`, started and stopped here; optionally stopped
 * mid-run to prove the fall back to headers).
 */
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startLabSimulator, DEFAULT_API_KEY, type LabSimulator } from '../simulator';
import { freePort, readExample, startNodeRed, type NodeRedProcess } from './node-red-process';
import { resultsLoopEnv } from './example-env';

export type FleetMode = 'headers' | 'redis';

export interface FleetOptions {
  processes: number;
  filesPerProcess: number;
  mode: FleetMode;
  limit?: number;
  windowMs?: number;
  /** Redis mode: stop redis-server once this share of the files is done (0 < x < 1). */
  stopRedisAt?: number;
  /** Give up after this long. */
  deadlineMs?: number;
  /** Node-RED's log lines (all processes, prefixed with the PC's number). */
  onLog?: (line: string) => void;
  /** Progress lines. */
  onProgress?: (line: string) => void;
}

export interface FleetResult {
  mode: FleetMode;
  processes: number;
  files: number;
  /** Files with a SUCCEEDED processor. */
  done: number;
  /** Files still in a watched folder at the end. */
  leftInFolders: number;
  /** Processors beyond the first, over all files. */
  duplicates: number;
  requests: number;
  requestsPerFile: number;
  seconds: number;
  filesPerMinute: number;
  boundFilesPerMinute: number;
  ratio: number;
  rateLimited429: number;
  /** Per PC: files done. */
  perProcess: number[];
  /** Redis mode with a stop: files done when it was stopped, and whether a PC logged the fallback. */
  redisStoppedAfterFiles?: number;
  fallbackWarned?: boolean;
}

/** The Debian redis-server, or undefined when it is not installed. */
export function redisServerPath(): string | undefined {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) if (fs.existsSync(p)) return p;
  const r = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

export interface RedisServer {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** A throw-away redis-server on a free loopback port: no persistence, no config file. */
export async function startRedisServer(dir: string, port?: number): Promise<RedisServer> {
  const bin = redisServerPath();
  if (!bin) throw new Error('redis-server is not installed (Debian: apt-get install -y redis-server)');
  port ??= await freePort();
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 20_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      if (/Ready to accept connections/i.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}): ${out}`));
    });
  });
  child.stdout!.resume();
  child.stderr!.resume();
  return {
    url: `redis://127.0.0.1:${port}`,
    child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL'); // as a crash or a pulled cable would: no goodbye to the clients
      await exited;
    },
  };
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function runFleet(o: FleetOptions): Promise<FleetResult> {
  const limit = o.limit ?? 60;
  const windowMs = o.windowMs ?? 30_000;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `labwire-fleet-${o.mode}-`));
  const reds: NodeRedProcess[] = [];
  let sim: LabSimulator | undefined;
  let redis: RedisServer | undefined;
  const warned = new Set<number>();
  try {
    sim = await startLabSimulator({ benchling: { rateLimit: { limit, windowMs }, taskDurationMs: 1500 } });
    if (o.mode === 'redis') redis = await startRedisServer(root);
    const pcs = Array.from({ length: o.processes }, (_, i) => {
      const dir = path.join(root, `pc${i + 1}`);
      const pc = { instrument: path.join(dir, 'instrument'), archive: path.join(dir, 'archive'), userDir: path.join(dir, 'node-red') };
      fs.mkdirSync(pc.instrument, { recursive: true });
      return pc;
    });
    // Started one after the other (a 2-core machine starting 5 Node-REDs at once only times out),
    // deployed, and idle until the files arrive together.
    for (const [i, pc] of pcs.entries()) {
      const red = await startNodeRed({
        userDir: pc.userDir,
        port: await freePort(),
        env: {
          ...resultsLoopEnv(sim.benchling.url, { instrument: pc.instrument, archive: pc.archive }),
          // Per device, as docs/fleet.md sets it: the budget's Redis through the environment.
          LABWIRE_REDIS_URL: redis?.url ?? '',
        },
        onLog: (line) => {
          if (/Redis budget down/.test(line)) warned.add(i);
          o.onLog?.(`pc${i + 1} ${line}`);
        },
      });
      reds.push(red);
      await red.deploy(
        readExample('01 - Instrument CSV to Benchling run').map((n) => {
          if (n.type === 'benchling-tenant') {
            return { ...n, rateLimit: limit, ...(redis ? { redisUrl: '${LABWIRE_REDIS_URL}' } : {}), credentials: { apiKey: DEFAULT_API_KEY } };
          }
          if (n.type === 'lab-watch-folder') return { ...n, stability: 0.5 };
          if (n.type === 'benchling-poll-task') return { ...n, interval: 2, maxInterval: 10 };
          return n;
        }),
      );
    }
    sim.benchling.resetCounters();
    sim.benchling.clearRequestLog();
    const names: string[][] = pcs.map((_, i) => Array.from({ length: o.filesPerProcess }, (_, n) => `pc${i + 1}-plate-${String(n).padStart(4, '0')}.csv`));
    // Together: every PC's files in the same moment.
    for (const [i, pc] of pcs.entries()) for (const name of names[i]) fs.writeFileSync(path.join(pc.instrument, name), `well,od\nA1,${name.length}\nA2,${i}\n# ${name}\n`);
    const files = o.processes * o.filesPerProcess;
    const deadline = Date.now() + (o.deadlineMs ?? 30 * 60_000);
    const doneFiles = () => new Set(sim!.benchling.listProcessorInfo().filter((p) => p.status === 'SUCCEEDED').map((p) => p.fileName));
    const left = () => pcs.reduce((a, pc) => a + fs.readdirSync(pc.instrument).filter((f) => f.endsWith('.csv')).length, 0);
    let stoppedAfter: number | undefined;
    let lastReport = 0;
    for (;;) {
      const done = doneFiles().size;
      if (redis && o.stopRedisAt && stoppedAfter === undefined && done >= files * o.stopRedisAt) {
        await redis.stop();
        stoppedAfter = done;
        o.onProgress?.(`redis-server stopped after ${done} files`);
      }
      if (done >= files && left() === 0) break;
      if (Date.now() > deadline) throw new Error(`fleet: only ${done} of ${files} files done before the deadline (${left()} still in the folders)`);
      if (Date.now() - lastReport > 15_000) {
        lastReport = Date.now();
        o.onProgress?.(`${done}/${files} files, ${sim.benchling.counters.requests} requests, ${sim.benchling.counters.rateLimited} × 429`);
      }
      await delay(250);
    }
    const log = sim.benchling.requestLog;
    const first = Math.min(...log.map((e) => e.time));
    const last = Math.max(...log.map((e) => e.time + e.durationMs));
    const seconds = (last - first) / 1000;
    const processors = sim.benchling.listProcessorInfo();
    const byFile = new Map<string, number>();
    for (const p of processors) byFile.set(p.fileName, (byFile.get(p.fileName) ?? 0) + 1);
    const all = new Set(names.flat());
    const done = doneFiles();
    const requests = log.length;
    const requestsPerFile = requests / files;
    const filesPerMinute = files / (seconds / 60);
    const boundFilesPerMinute = (limit * (60_000 / windowMs)) / requestsPerFile;
    return {
      mode: o.mode,
      processes: o.processes,
      files,
      done: [...all].filter((f) => done.has(f)).length,
      leftInFolders: left(),
      duplicates: [...byFile].filter(([f]) => all.has(f)).reduce((a, [, n]) => a + Math.max(0, n - 1), 0),
      requests,
      requestsPerFile: Number(requestsPerFile.toFixed(2)),
      seconds: Number(seconds.toFixed(1)),
      filesPerMinute: Number(filesPerMinute.toFixed(2)),
      boundFilesPerMinute: Number(boundFilesPerMinute.toFixed(2)),
      ratio: Number((filesPerMinute / boundFilesPerMinute).toFixed(3)),
      rateLimited429: sim.benchling.counters.rateLimited,
      perProcess: names.map((list) => list.filter((f) => done.has(f)).length),
      ...(o.stopRedisAt ? { redisStoppedAfterFiles: stoppedAfter, fallbackWarned: warned.size > 0 } : {}),
    };
  } finally {
    await Promise.all(reds.map((r) => r.stop().catch(() => undefined)));
    await redis?.stop().catch(() => undefined);
    await sim?.close().catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
  }
}

export function formatFleet(r: FleetResult): string {
  const lines = [
    `fleet, ${r.mode === 'redis' ? 'shared Redis budget' : 'header-aware'}: ${r.processes} Node-RED × ${r.files / r.processes} files`,
    `  done ${r.done}/${r.files}, left in folders ${r.leftInFolders}, duplicates ${r.duplicates}, per PC ${r.perProcess.join('/')}`,
    `  ${r.requests} requests (${r.requestsPerFile}/file) in ${r.seconds} s, 429s: ${r.rateLimited429}`,
    `  ${r.filesPerMinute} files/min aggregate vs bound ${r.boundFilesPerMinute} (limit ÷ requests per file): ratio ${r.ratio}`,
  ];
  if (r.redisStoppedAfterFiles !== undefined) lines.push(`  redis-server stopped after ${r.redisStoppedAfterFiles} files; fallback warned: ${r.fallbackWarned}`);
  return lines.join('\n');
}
