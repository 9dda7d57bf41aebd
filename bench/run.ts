/**
 * `npm run bench` — runs the benchmarks, prints figures, ratios against baselines measured in the
 * same run, and PASS/MISS per target, and writes everything to bench/out/results.json.
 * Exits non-zero only when a benchmark crashes; a missed target is a MISS line, not a failure.
 *
 *   npm run bench -- [--sizes 100M,1G] [--repeats N] [--skip-upload] [--skip-fair] [--fair-size 1G] [--skip-watch]
 *                    [--skip-pipeline] [--pipeline-files N] [--watch-files N] [--watch-stability-ms MS]
 *                    [--skip-history] [--history-files N] [--history-repeats N]
 *   env: BENCH_SIZES, BENCH_REPEATS, BENCH_SKIP_UPLOAD=1, BENCH_SKIP_FAIR=1, BENCH_FAIR_SIZE,
 *        BENCH_FAIR_POLLERS, BENCH_FAIR_POLL_MS, BENCH_PARTS_IN_PARALLEL, BENCH_SKIP_WATCH=1, BENCH_WATCH_FILES,
 *        BENCH_SKIP_HISTORY=1, BENCH_HISTORY_FILES, BENCH_HISTORY_REPEATS,
 *        BENCH_WATCH_STABILITY_MS, BENCH_CPU_PROF_DIR (--cpu-prof every upload process),
 *        BENCH_UPLOAD_FRESH=1 (upload RSS measured from a fresh process, not a warmed one),
 *        BENCH_RSS_TRACE=1 (each new RSS peak of an upload, with V8's heap spaces, on stderr)
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { benchPollDuringUpload, benchUploadBlob, parseSize, printFairResult, printUploadResults, UploadBenchResult } from './upload-blob';
import { benchWatchFolder } from './watch-folder';
import { benchPipelineRate } from './pipeline-rate';
import { benchHistory, printHistoryResult } from './history';

interface Args {
  sizes?: number[];
  repeats?: number;
  skipUpload: boolean;
  skipFair: boolean;
  fairSize?: number;
  skipWatch: boolean;
  skipPipeline: boolean;
  pipelineFiles?: number;
  watchFiles?: number;
  watchStabilityMs?: number;
  skipHistory: boolean;
  historyFiles?: number;
  historyRepeats?: number;
}

function parseArgs(argv: string[], env: NodeJS.ProcessEnv): Args {
  const flag = (v: string | undefined) => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
  const num = (name: string, v: string | undefined) => {
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}: not a positive number: ${v}`);
    return n;
  };
  const a: Args = {
    sizes: env.BENCH_SIZES ? env.BENCH_SIZES.split(',').map(parseSize) : undefined,
    repeats: num('BENCH_REPEATS', env.BENCH_REPEATS),
    skipUpload: flag(env.BENCH_SKIP_UPLOAD),
    skipFair: flag(env.BENCH_SKIP_FAIR),
    fairSize: env.BENCH_FAIR_SIZE ? parseSize(env.BENCH_FAIR_SIZE) : undefined,
    skipWatch: flag(env.BENCH_SKIP_WATCH),
    skipPipeline: flag(env.BENCH_SKIP_PIPELINE),
    pipelineFiles: num('BENCH_PIPELINE_FILES', env.BENCH_PIPELINE_FILES),
    watchFiles: num('BENCH_WATCH_FILES', env.BENCH_WATCH_FILES),
    watchStabilityMs: num('BENCH_WATCH_STABILITY_MS', env.BENCH_WATCH_STABILITY_MS),
    skipHistory: flag(env.BENCH_SKIP_HISTORY),
    historyFiles: num('BENCH_HISTORY_FILES', env.BENCH_HISTORY_FILES),
    historyRepeats: num('BENCH_HISTORY_REPEATS', env.BENCH_HISTORY_REPEATS),
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let v: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      v = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const val = () => {
      if (v !== undefined) return v;
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    switch (arg) {
      case '--sizes':
        a.sizes = val().split(',').filter(Boolean).map(parseSize);
        break;
      case '--repeats':
        a.repeats = num('--repeats', val());
        break;
      case '--skip-upload':
        a.skipUpload = true;
        break;
      case '--skip-fair':
        a.skipFair = true;
        break;
      case '--fair-size':
        a.fairSize = parseSize(val());
        break;
      case '--skip-watch':
        a.skipWatch = true;
        break;
      case '--skip-pipeline':
        a.skipPipeline = true;
        break;
      case '--pipeline-files':
        a.pipelineFiles = num('--pipeline-files', val());
        break;
      case '--watch-files':
        a.watchFiles = num('--watch-files', val());
        break;
      case '--watch-stability-ms':
        a.watchStabilityMs = num('--watch-stability-ms', val());
        break;
      case '--skip-history':
        a.skipHistory = true;
        break;
      case '--history-files':
        a.historyFiles = num('--history-files', val());
        break;
      case '--history-repeats':
        a.historyRepeats = num('--history-repeats', val());
        break;
      default:
        throw new Error(
          `unknown argument ${arg}\nusage: npm run bench -- [--sizes 100M,1G] [--repeats N] [--skip-upload] [--skip-fair] [--fair-size 1G] [--skip-watch] [--skip-pipeline] [--pipeline-files N] [--watch-files N] [--watch-stability-ms MS] [--skip-history] [--history-files N] [--history-repeats N]`,
        );
    }
  }
  return a;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2), process.env);
  const started = new Date();
  const out: Record<string, unknown> = {
    startedAt: started.toISOString(),
    machine: { node: process.version, platform: `${os.platform()} ${os.release()}`, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30) },
  };
  let crashed = false;
  console.log(`labwire benchmarks — Node ${process.version}, ${os.cpus().length} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB`);

  if (args.skipUpload) {
    console.log('\n== upload-blob: skipped');
    out.uploadBlob = 'skipped';
  } else {
    console.log('\n== upload-blob: multipart Benchling blob upload vs native md5sum + base64 (CPU) and a naive two-in-flight uploader (wall)');
    try {
      const results: UploadBenchResult[] = await benchUploadBlob({
        sizes: args.sizes,
        repeats: args.repeats,
        cpuProfDir: process.env.BENCH_CPU_PROF_DIR,
      });
      console.log('');
      printUploadResults(results);
      out.uploadBlob = results;
    } catch (err) {
      crashed = true;
      console.error(`CRASH upload-blob: ${(err as Error).stack ?? err}`);
      out.uploadBlob = { error: String((err as Error).message ?? err) };
    }
  }

  if (args.skipFair) {
    console.log('\n== upload-fairness: skipped');
    out.uploadFairness = 'skipped';
  } else {
    console.log('\n== upload-fairness: task polls during a big upload under the 60 requests / 30 s tenant limit');
    try {
      const num = (v: string | undefined) => (v ? Number(v) : undefined);
      const r = await benchPollDuringUpload({ size: args.fairSize, pollers: num(process.env.BENCH_FAIR_POLLERS), pollIntervalMs: num(process.env.BENCH_FAIR_POLL_MS) });
      printFairResult(r);
      out.uploadFairness = r;
    } catch (err) {
      crashed = true;
      console.error(`CRASH upload-fairness: ${(err as Error).stack ?? err}`);
      out.uploadFairness = { error: String((err as Error).message ?? err) };
    }
  }

  if (args.skipWatch) {
    console.log('\n== watch-folder: skipped');
    out.watchFolder = 'skipped';
  } else {
    {
      console.log('\n== watch-folder: files renamed at once into a watched folder, FolderWatcher vs raw chokidar');
      try {
        const r = await benchWatchFolder({ files: args.watchFiles, stabilityMs: args.watchStabilityMs });
        for (const [k, v] of Object.entries(r)) console.log(`  ${k.padEnd(22)} ${v}`);
        if (typeof r.ratio === 'number') {
          console.log(`${r.ratio <= 1.3 ? 'PASS' : 'MISS'} watch-folder: time ours ÷ raw chokidar = ${r.ratio.toFixed(2)} (median of ${r.runs}; target ≤ 1.3)`);
        } else {
          console.log(`INCOMPLETE watch-folder: baseline incomplete — raw chokidar lost files in all ${r.runs} run(s), so there is no ratio (ours: ${r.oursMs} ms)`);
        }
        for (const k of ['oursDuplicates', 'oursMisses']) {
          if (typeof r[k] === 'number') console.log(`${r[k] === 0 ? 'PASS' : 'MISS'} watch-folder: ${k} = ${r[k]} (target 0)`);
        }
        out.watchFolder = r;
      } catch (err) {
        crashed = true;
        console.error(`CRASH watch-folder: ${(err as Error).stack ?? err}`);
        out.watchFolder = { error: String((err as Error).message ?? err) };
      }
    }
  }

  if (args.skipPipeline) {
    console.log('\n== pipeline-rate: skipped');
    out.pipelineRate = 'skipped';
  } else {
    console.log('\n== pipeline-rate: files end to end through node-red under the 60 requests / 30 s tenant limit');
    try {
      const r = await benchPipelineRate({ files: args.pipelineFiles });
      for (const [k, v] of Object.entries(r)) console.log(`  ${k.padEnd(22)} ${v}`);
      console.log(`${r.ratio >= 0.9 ? 'PASS' : 'MISS'} pipeline-rate: files/min ÷ bound = ${r.ratio} (target ≥ 0.9)`);
      console.log(`${r.rateLimited429 === 0 ? 'PASS' : 'MISS'} pipeline-rate: 429s = ${r.rateLimited429} (target 0)`);
      out.pipelineRate = r;
    } catch (err) {
      crashed = true;
      console.error(`CRASH pipeline-rate: ${(err as Error).stack ?? err}`);
      out.pipelineRate = { error: String((err as Error).message ?? err) };
    }
  }

  if (args.skipHistory) {
    console.log('\n== history: skipped');
    out.history = 'skipped';
  } else {
    const files = args.historyFiles ?? 100_000;
    console.log(`\n== history: node-red start-up and RSS with ${files} finished files of labwire-state vs an empty one`);
    try {
      const r = await benchHistory({ files, repeats: args.historyRepeats });
      console.log('');
      printHistoryResult(r);
      out.history = r;
    } catch (err) {
      crashed = true;
      console.error(`CRASH history: ${(err as Error).stack ?? err}`);
      out.history = { error: String((err as Error).message ?? err) };
    }
  }

  out.finishedAt = new Date().toISOString();
  const outDir = path.resolve(__dirname, '..', '..', 'bench', 'out');
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, 'results.json');
  fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.log(`\nresults: ${path.relative(process.cwd(), file) || file}`);
  return crashed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`bench: ${(err as Error).message ?? err}`);
    process.exit(2);
  },
);
