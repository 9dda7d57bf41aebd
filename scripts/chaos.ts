// `npm run chaos -- [--scenario A|B|all] [--files N] [--fail-files N] [--faults P] [--kills K] [--seed S]
//                   [--set node-type.property=value]... [--env NAME=VALUE]... [--json FILE] [--log FILE] [--keep]
//                   [--deadline SECONDS] [--stall SECONDS] [--quiet SECONDS] [--fault-kinds 500,resetAfter,...]
//                   [--trickle-ms MS] [--kill-min S] [--kill-max S] [--write-every MS]`
//
// The chaos proof for the lab loop (example 01 in a real `node-red`, against the lab simulator):
//   A. faults, no restart: ~20 % faults of every kind, N files + FAIL files, counted from the simulator;
//   B. crashes: files written every 150 ms, Node-RED SIGKILLed K times and restarted, rate limit on.
// Prints a table per scenario and the figures as JSON; exits 1 when an acceptance fails.
// Node properties: --set lab-watch-folder.retryBaseSec=1 (or LABWIRE_CHAOS_OVERRIDES JSON).
import * as fs from 'fs';
import { FAULT_KINDS, type FaultKind } from '../simulator';
import { abortChaos, formatResult, mergeOverrides, parseSetting, runScenarioA, runScenarioB, type NodeOverrides, type ScenarioResult } from './chaos-lib';

function usage(msg?: string): never {
  if (msg) console.error(`chaos: ${msg}`);
  console.error(
    'usage: npm run chaos -- [--scenario A|B|all] [--files N] [--fail-files N] [--faults P] [--kills K] [--seed S]\n' +
      '         [--set node-type.property=value]... [--env NAME=VALUE]... [--json FILE] [--log FILE] [--keep]\n' +
      '         [--deadline SECONDS] [--stall SECONDS] [--quiet SECONDS] [--fault-kinds 500,resetAfter,...]\n' +
      '         [--trickle-ms MS] [--kill-min S] [--kill-max S] [--write-every MS]\n' +
      '  Defaults: A 100 files + 5 FAIL files at 20 % faults; B 200 files every 150 ms, 5 kills every 2–15 s.\n' +
      '  Node properties also from LABWIRE_CHAOS_OVERRIDES=\'{"lab-watch-folder":{"retryBaseSec":1}}\'.',
  );
  process.exit(2);
}

interface Args {
  scenario: 'A' | 'B' | 'all';
  files?: number;
  failFiles: number;
  faults: number;
  faultKinds?: FaultKind[];
  kills: number;
  seed: number;
  overrides: NodeOverrides;
  env: Record<string, string>;
  json?: string;
  log?: string;
  keep: boolean;
  deadline?: number;
  stall?: number;
  quiet: number;
  trickleMs: number;
  killMin: number;
  killMax: number;
  writeEvery: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    scenario: 'all',
    failFiles: 5,
    faults: 0.2,
    kills: 5,
    seed: Date.now() % 100_000,
    overrides: {},
    env: {},
    keep: false,
    quiet: 5,
    trickleMs: 1000,
    killMin: 2,
    killMax: 15,
    writeEvery: 150,
  };
  for (let i = 0; i < argv.length; i++) {
    let k = argv[i];
    let v: string | undefined;
    const eq = k.indexOf('=');
    if (k.startsWith('--') && eq > 0) {
      v = k.slice(eq + 1);
      k = k.slice(0, eq);
    }
    const val = () => {
      if (v !== undefined) return v;
      const n = argv[++i];
      if (n === undefined) usage(`${k} needs a value`);
      return n;
    };
    const num = () => {
      const s = val();
      const n = Number(s);
      if (!Number.isFinite(n) || n < 0) usage(`${k}: not a number: ${s}`);
      return n;
    };
    switch (k) {
      case '--scenario': {
        const s = val().toUpperCase();
        if (s !== 'A' && s !== 'B' && s !== 'ALL') usage(`--scenario wants A, B or all`);
        a.scenario = s === 'ALL' ? 'all' : s;
        break;
      }
      case '--files':
        a.files = Math.floor(num());
        break;
      case '--fail-files':
        a.failFiles = Math.floor(num());
        break;
      case '--faults':
        a.faults = num();
        if (a.faults > 1) usage('--faults is a share 0..1');
        break;
      case '--fault-kinds': {
        const kinds = val().split(',').filter(Boolean) as FaultKind[];
        for (const x of kinds) if (!FAULT_KINDS.includes(x)) usage(`--fault-kinds: unknown kind ${x} (known: ${FAULT_KINDS.join(', ')})`);
        a.faultKinds = kinds;
        break;
      }
      case '--kills':
        a.kills = Math.floor(num());
        break;
      case '--seed':
        a.seed = Math.floor(num());
        break;
      case '--set':
        a.overrides = mergeOverrides(a.overrides, parseSetting(val()));
        break;
      case '--env': {
        const s = val();
        const j = s.indexOf('=');
        if (j <= 0) usage(`--env wants NAME=VALUE, got ${s}`);
        a.env[s.slice(0, j)] = s.slice(j + 1);
        break;
      }
      case '--json':
        a.json = val();
        break;
      case '--log':
        a.log = val();
        break;
      case '--keep':
        a.keep = true;
        break;
      case '--deadline':
        a.deadline = num();
        break;
      case '--stall':
        a.stall = num();
        break;
      case '--quiet':
        a.quiet = num();
        break;
      case '--trickle-ms':
        a.trickleMs = num();
        break;
      case '--kill-min':
        a.killMin = num();
        break;
      case '--kill-max':
        a.killMax = num();
        break;
      case '--write-every':
        a.writeEvery = num();
        break;
      case '-h':
      case '--help':
        usage();
      // eslint-disable-next-line no-fallthrough
      default:
        usage(`unknown argument ${k}`);
    }
  }
  if (a.killMax < a.killMin) usage('--kill-max is below --kill-min');
  return a;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const logStream = a.log ? fs.createWriteStream(a.log) : undefined;
  const onLog = logStream ? (l: string) => logStream.write(l + '\n') : undefined;
  const progress = (t: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${t}`);
  console.log(`chaos: seed ${a.seed} (repeat the random choices with --seed ${a.seed})`);
  const results: ScenarioResult[] = [];
  // Ctrl-C: let the scenario's finally blocks kill Node-RED and remove the temp folders.
  let interrupted = false;
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    abortChaos();
    console.error('chaos: interrupted; cleaning up (Ctrl-C again to quit at once)');
  });
  if (a.scenario === 'A' || a.scenario === 'all') {
    const files = a.files ?? 100;
    progress(`A: ${files} files + ${a.failFiles} FAIL files, ${Math.round(a.faults * 100)} % faults (${(a.faultKinds ?? FAULT_KINDS).join(', ')})`);
    const r = await runScenarioA({
      files,
      failFiles: a.failFiles,
      faults: a.faults,
      faultKinds: a.faultKinds,
      seed: a.seed,
      overrides: a.overrides,
      env: a.env,
      deadlineMs: (a.deadline ?? 900) * 1000,
      stallMs: (a.stall ?? 60) * 1000,
      quietMs: a.quiet * 1000,
      trickleByteMs: a.trickleMs,
      keep: a.keep,
      onLog,
      onProgress: progress,
    });
    results.push(r);
    console.log('\n' + formatResult(r) + '\n');
  }
  if ((a.scenario === 'B' || a.scenario === 'all') && !interrupted) {
    const files = a.files ?? 200;
    progress(`B: ${files} files every ${a.writeEvery} ms, ${a.kills} SIGKILLs every ${a.killMin}–${a.killMax} s, rate limit 60/30 s`);
    const r = await runScenarioB({
      files,
      kills: a.kills,
      writeEveryMs: a.writeEvery,
      killMinSec: a.killMin,
      killMaxSec: a.killMax,
      seed: a.seed,
      overrides: a.overrides,
      env: a.env,
      deadlineMs: (a.deadline ?? 1200) * 1000,
      stallMs: (a.stall ?? 90) * 1000,
      quietMs: a.quiet * 1000,
      keep: a.keep,
      onLog,
      onProgress: progress,
    });
    results.push(r);
    console.log('\n' + formatResult(r) + '\n');
  }
  const summary = { seed: a.seed, results: results.map((r) => ({ scenario: r.scenario, ok: r.ok, outcome: r.outcome, seconds: r.seconds, figures: r.figures, failed: r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.value}`) })) };
  const json = JSON.stringify(summary, null, 2);
  console.log('figures (JSON):\n' + json);
  if (a.json) fs.writeFileSync(a.json, json + '\n');
  logStream?.end();
  const ok = results.every((r) => r.ok);
  if (!ok) for (const r of results.filter((x) => !x.ok)) console.error(`chaos: scenario ${r.scenario} FAILED: ${r.checks.filter((c) => !c.ok).map((c) => `${c.name} = ${c.value}`).join('; ')}`);
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error('chaos:', e instanceof Error ? e.stack : e);
  process.exit(1);
});
