/**
 * N instrument files end to end (watch folder → upload → processor → task) through a real
 * `node-red` process running the "Instrument CSV → Benchling run" example, against the simulator
 * enforcing Benchling's documented tenant limit (60 requests per 30 s).
 *
 * Figures: files per minute, the bound the limit allows (limit per minute ÷ requests the
 * pipeline needed per file, counted by the simulator), their ratio (target ≥ 0.9) and the 429s
 * the simulator had to send (target 0).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startLabSimulator, DEFAULT_API_KEY } from '../simulator';
import { freePort, readExample, startNodeRed } from '../scripts/node-red-process';
import { resultsLoopEnv } from '../scripts/example-env';

export interface PipelineRateResult {
  files: number;
  requests: number;
  requestsPerFile: number;
  seconds: number;
  filesPerMinute: number;
  boundFilesPerMinute: number;
  ratio: number;
  /** Requests ÷ what the limit allows in the windows the run touched (the first window's burst included). */
  windowUtilisation: number;
  rateLimited429: number;
}

export async function benchPipelineRate(o: { files?: number; limit?: number; windowMs?: number } = {}): Promise<PipelineRateResult> {
  const files = o.files ?? 40;
  const limit = o.limit ?? 60;
  const windowMs = o.windowMs ?? 30_000;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'labwire-bench-pipeline-'));
  const instrument = path.join(root, 'instrument');
  const archive = path.join(root, 'archive');
  fs.mkdirSync(instrument);
  const sim = await startLabSimulator({ benchling: { rateLimit: { limit, windowMs }, taskDurationMs: 1500 } });
  const red = await startNodeRed({
    userDir: path.join(root, 'node-red'),
    port: await freePort(),
    env: {
      ...resultsLoopEnv(sim.benchling.url, { instrument: instrument, archive: archive }),
    },
  });
  try {
    await red.deploy(
      readExample('01 - Instrument CSV to Benchling run').map((n) => {
        // The tenant's limit is the documented default, as a user would leave it.
        if (n.type === 'benchling-tenant') return { ...n, rateLimit: limit, credentials: { apiKey: DEFAULT_API_KEY } };
        if (n.type === 'lab-watch-folder') return { ...n, stability: 0.5 };
        if (n.type === 'benchling-poll-task') return { ...n, interval: 2, maxInterval: 10 };
        return n;
      }),
    );
    // Let the deploy's own requests (none expected) settle, then start counting.
    sim.benchling.resetCounters();
    sim.benchling.clearRequestLog();
    for (let i = 0; i < files; i++) fs.writeFileSync(path.join(instrument, `plate-${String(i).padStart(4, '0')}.csv`), `well,od\nA1,${i}\nA2,${i + 1}\n`);
    const deadline = Date.now() + 20 * 60_000;
    const succeeded = () => sim.benchling.listTasks().filter((t) => t.status === 'SUCCEEDED').length;
    while (succeeded() < files || fs.readdirSync(instrument).length > 0) {
      if (Date.now() > deadline) throw new Error(`pipeline bench: only ${succeeded()} of ${files} files processed in 20 minutes`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const log = sim.benchling.requestLog;
    const first = Math.min(...log.map((e) => e.time));
    // The work ends with the last task poll that saw SUCCEEDED.
    const last = Math.max(...log.map((e) => e.time + e.durationMs));
    const seconds = (last - first) / 1000;
    const requests = log.length;
    const requestsPerFile = requests / files;
    const filesPerMinute = files / (seconds / 60);
    const boundFilesPerMinute = (limit * (60_000 / windowMs)) / requestsPerFile;
    return {
      files,
      requests,
      requestsPerFile: Number(requestsPerFile.toFixed(2)),
      seconds: Number(seconds.toFixed(1)),
      filesPerMinute: Number(filesPerMinute.toFixed(2)),
      boundFilesPerMinute: Number(boundFilesPerMinute.toFixed(2)),
      ratio: Number((filesPerMinute / boundFilesPerMinute).toFixed(3)),
      windowUtilisation: Number((requests / (limit * (Math.floor((seconds * 1000) / windowMs) + 1))).toFixed(3)),
      rateLimited429: sim.benchling.counters.rateLimited,
    };
  } finally {
    await red.stop();
    await sim.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (require.main === module) {
  benchPipelineRate({ files: Number(process.env.BENCH_PIPELINE_FILES) || undefined }).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
