/**
 * The operator's file list over a large history: does `GET /labwire/files?limit=100` answer in
 * ≤ 100 ms (median) with 100,000 finished journeys?
 *
 * 1. A history of N journeys (default 100,000) is written the way the watcher writes it: one
 *    JSON-lines file per UTC day over the last 30 days (the retention), under the user directory's
 *    `labwire-state/history/watch-folder-<node id>/`. Each record has the shape the pipeline gives
 *    (blob, processor, task and run ids, upload/processor/task times, archive path); one in 20
 *    ended dead-lettered with Benchling's reason and an error-file link.
 * 2. A real `node-red` process (scripts/node-red-process) runs a flow with one `lab-watch-folder`
 *    using that history, and the pack's admin plugin.
 * 3. Measure over HTTP, one request at a time: the first request (it may wait for the background
 *    count of the history), then R (default 200) requests of the first page, R of a deep page
 *    (a cursor ~50,000 records back), and a few filtered ones (state=failed, q=<run id>).
 *
 * Target: median of the first page ≤ 100 ms.
 *
 *   node dist/bench/operator-api.js [files] [repeats]
 */
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import { performance } from 'perf_hooks';
import { freePort, startNodeRed } from '../scripts/node-red-process';

const DAY_MS = 24 * 3600_000;

function get(url: string): Promise<{ status: number; body: any; ms: number }> {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), ms: performance.now() - t }));
      })
      .on('error', reject);
  });
}

function stats(xs: number[]): { median: number; p95: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { median: at(0.5), p95: at(0.95), min: s[0], max: s[s.length - 1] };
}

const uuid = () => crypto.randomUUID();
const hex = (n: number) => crypto.randomBytes(n).toString('hex');

/** Writes `files` history records over the last 30 days, oldest first, in day files. */
export function writeHistory(dir: string, folder: string, archive: string, files: number, now = Date.now()): number {
  fs.mkdirSync(dir, { recursive: true });
  const span = 29 * DAY_MS;
  const start = now - span;
  let bytes = 0;
  let day = '';
  let chunks: string[] = [];
  const flush = () => {
    if (!chunks.length) return;
    const text = chunks.join('');
    fs.appendFileSync(path.join(dir, `journeys-${day}.jsonl`), text);
    bytes += Buffer.byteLength(text);
    chunks = [];
  };
  for (let i = 0; i < files; i++) {
    const at = Math.floor(start + (span * i) / files);
    const d = new Date(at).toISOString().slice(0, 10);
    if (d !== day) {
      flush();
      day = d;
    }
    const rel = `plate-${String(i).padStart(6, '0')}-${new Date(at).toISOString().slice(0, 19).replace(/[-:T]/g, '')}.csv`;
    const failed = i % 20 === 7;
    const seen = at - 9000;
    const rec: Record<string, unknown> = {
      id: hex(8),
      size: 2048 + (i % 500),
      mtimeMs: seen - 1500,
      state: failed ? 'failed' : 'done',
      emitCount: failed ? 3 : 1,
      seenAt: seen,
      firstSentAt: seen + 5200,
      emittedAt: seen + 5200,
      ackedAt: at - 50,
      steps: {
        blobId: uuid(),
        uploadedAt: seen + 5600,
        processorId: `prcsr_${hex(4)}`,
        processorCreatedAt: seen + 6100,
        taskId: uuid(),
        taskStatus: failed ? 'FAILED' : 'SUCCEEDED',
        taskFinishedAt: at - 100,
        assayRunId: `assayrun_${hex(4)}`,
      },
      relativePath: rel,
      path: path.join(folder, rel),
      folder,
    };
    if (failed) {
      Object.assign(rec, {
        failures: 1,
        firstFailureAt: at - 80,
        failure: {
          code: 'TASK_FAILED',
          message: 'Output file processing failed (simulated): 3 rows could not be parsed',
          node: { id: 'a1b2c3d4e5f60718', type: 'benchling-poll-task', name: 'wait for the run' },
          errorFile: { id: uuid(), name: `${rel}.errors.csv`, downloadURL: `https://tenant.benchling.com/files/${uuid()}/download` },
          at: at - 80,
        },
        error: 'Output file processing failed (simulated): 3 rows could not be parsed',
        gone: at,
      });
    } else {
      Object.assign(rec, { doneAt: at, archivedTo: path.join(archive, rel) });
    }
    chunks.push(JSON.stringify(rec) + '\n');
    if (chunks.length >= 2000) flush();
  }
  flush();
  return bytes;
}

export async function benchOperatorApi(files = 100_000, repeats = 200, log: (s: string) => void = console.log): Promise<{ firstPage: ReturnType<typeof stats>; deepPage: ReturnType<typeof stats>; firstRequestMs: number }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'labwire-bench-operator-'));
  try {
    const userDir = path.join(root, 'user');
    const folder = path.join(root, 'in');
    const archive = path.join(root, 'archive');
    fs.mkdirSync(folder, { recursive: true });
    const t0 = performance.now();
    const bytes = writeHistory(path.join(userDir, 'labwire-state', 'history', 'watch-folder-watch'), folder, archive, files);
    log(`history: ${files} journeys, ${(bytes / 1e6).toFixed(1)} MB in ${fs.readdirSync(path.join(userDir, 'labwire-state', 'history', 'watch-folder-watch')).length} day files (written in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);

    const red = await startNodeRed({ userDir, port: await freePort() });
    try {
      await red.deploy([
        { id: 'tab', type: 'tab', label: 'bench' },
        { id: 'watch', type: 'lab-watch-folder', z: 'tab', name: 'bench', folder, include: '*.csv', postAction: 'move', archiveFolder: archive, wires: [[]] },
      ]);
      await new Promise((r) => setTimeout(r, 500));
      const first = await get(`${red.url}/labwire/files?limit=100`);
      if (first.status !== 200) throw new Error(`GET /labwire/files: ${first.status} ${JSON.stringify(first.body)}`);
      const c = first.body.counts;
      log(`first request: ${first.ms.toFixed(1)} ms (counts ${JSON.stringify(c)})`);
      if (c.done + c.failed !== files) throw new Error(`counts ${c.done + c.failed} ≠ ${files}`);

      const firstPage: number[] = [];
      for (let i = 0; i < repeats; i++) {
        const r = await get(`${red.url}/labwire/files?limit=100`);
        if (r.body.files.length !== 100) throw new Error('short page');
        firstPage.push(r.ms);
      }
      // A cursor about half-way back: page along with limit=500 pages.
      let cursor: string | null = first.body.nextCursor;
      for (let i = 0; i < Math.floor(files / 2 / 500) && cursor; i++) cursor = (await get(`${red.url}/labwire/files?limit=500&cursor=${cursor}`)).body.nextCursor;
      const deepPage: number[] = [];
      for (let i = 0; i < repeats; i++) deepPage.push((await get(`${red.url}/labwire/files?limit=100&cursor=${cursor}`)).ms);
      const failed: number[] = [];
      for (let i = 0; i < 20; i++) failed.push((await get(`${red.url}/labwire/files?limit=100&state=failed`)).ms);
      const runId = first.body.files[50].assayRunId as string;
      const search: number[] = [];
      for (let i = 0; i < 5; i++) search.push((await get(`${red.url}/labwire/files?limit=100&q=${runId}`)).ms);

      const fmt = (s: ReturnType<typeof stats>) => `median ${s.median.toFixed(1)} ms, p95 ${s.p95.toFixed(1)} ms, min ${s.min.toFixed(1)}, max ${s.max.toFixed(1)}`;
      const fp = stats(firstPage);
      const dp = stats(deepPage);
      log(`GET /labwire/files?limit=100 (×${repeats}): ${fmt(fp)} — target ≤ 100 ms: ${fp.median <= 100 ? 'PASS' : 'MISS'}`);
      log(`… with a cursor ~${files / 2} records back (×${repeats}): ${fmt(dp)}`);
      log(`… state=failed (×20): ${fmt(stats(failed))}`);
      log(`… q=<one run id>, whole history searched (×5): ${fmt(stats(search))}`);
      return { firstPage: fp, deepPage: dp, firstRequestMs: first.ms };
    } finally {
      await red.stop();
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const files = Number(process.argv[2] ?? 100_000);
  const repeats = Number(process.argv[3] ?? 200);
  benchOperatorApi(files, repeats).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
