/**
 * OT-2 polling figures, measured with the real `ot2-run` node in a Node-RED runtime against the
 * simulated robots (both generations), at the node's default poll interval (1 s):
 *
 *   1. requests per minute while a run is in progress (from the robot accepting the start to the
 *      robot finishing), with and without "show the current step" (runs API);
 *   2. delay from the robot finishing (the simulator's timestamp) to the node's output message
 *      (this includes deleting the run and the protocol, which happens before the output).
 *
 *   node dist/bench/ot2-polling.js [--interval 1] [--run-seconds 10] [--latency-runs 6]
 */
import * as fs from 'fs';
import * as path from 'path';
import { OpentronsSim } from '../simulator/opentrons';
import { helper, loadFlow, nextMessage, tempDir, unload } from '../test/support/nodered';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

const INTERVAL_S = arg('interval', 1);
const RUN_SECONDS = arg('run-seconds', 10);
const LATENCY_RUNS = arg('latency-runs', 6);
const STEP_MS = 250;

interface Figures {
  generation: string;
  readSteps: boolean;
  requestsPerMinute: number;
  latencyMs: { mean: number; min: number; max: number; samples: number[] };
}

async function runOnce(sim: OpentronsSim, readSteps: boolean, steps: number, dir: string): Promise<{ rpm: number; latencyMs: number }> {
  const file = path.join(dir, `p_${Date.now()}_${Math.random().toString(36).slice(2)}.py`);
  fs.writeFileSync(file, `# sim-steps: ${steps}\n`);
  const flow = [
    { id: 'tab', type: 'tab' },
    { id: 'robot', type: 'ot2-robot', z: 'tab', host: sim.url, generation: 'auto' },
    { id: 'run', type: 'ot2-run', z: 'tab', robot: 'robot', protocol: file, protocolType: 'str', supportFilesType: 'none', parametersType: 'none', interval: INTERVAL_S, readSteps, wires: [['out'], ['out']] },
    { id: 'out', type: 'helper', z: 'tab' },
  ];
  const h = await loadFlow(['ot2-robot', 'ot2-run'], flow);
  const logStart = sim.requestLog.length;
  const got = nextMessage(h.getNode('out'), 10 * 60_000).then((m) => ({ m, at: Date.now() }));
  h.getNode('run').receive({});
  const { m, at } = await got;
  if (m.payload.outcome !== 'succeeded') throw new Error(`run did not succeed: ${JSON.stringify(m.payload)}`);
  const log = sim.requestLog.slice(logStart);
  let startedMs: number;
  let endedMs: number;
  if (sim.generation === 'runs') {
    const run = sim.allRuns.find((r) => r.id === m.payload.runId)!;
    startedMs = Date.parse(run.startedAt!);
    endedMs = run.endedAtMs!;
  } else {
    const s = sim.allSessions.find((x) => x.id === m.payload.runId)!;
    const startEvent = s.events.find((e) => e.event === 'protocol.startRun')!;
    startedMs = Date.parse(String(startEvent.timestamp));
    endedMs = s.endedAtMs!;
  }
  const during = log.filter((e) => e.time > startedMs && e.time <= endedMs).length;
  await unload();
  return { rpm: (during / (endedMs - startedMs)) * 60_000, latencyMs: at - endedMs };
}

async function main(): Promise<void> {
  const dir = tempDir('ot2-bench');
  await helper.startServer();
  const results: Figures[] = [];
  for (const generation of ['runs', 'sessions'] as const) {
    const sim = await new OpentronsSim({ generation, stepMs: STEP_MS, analysisMs: 200, loadMs: 200, settleMs: 20 }).start();
    try {
      for (const readSteps of generation === 'runs' ? [true, false] : [true]) {
        const long = await runOnce(sim, readSteps, Math.round((RUN_SECONDS * 1000) / STEP_MS), dir);
        const samples: number[] = [];
        for (let i = 0; i < LATENCY_RUNS; i++) samples.push((await runOnce(sim, readSteps, 4 + i, dir)).latencyMs);
        const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
        results.push({ generation, readSteps, requestsPerMinute: Math.round(long.rpm * 10) / 10, latencyMs: { mean: Math.round(mean), min: Math.min(...samples), max: Math.max(...samples), samples } });
      }
    } finally {
      await sim.close();
    }
  }
  await helper.stopServer();
  console.log(`OT-2 polling, poll interval ${INTERVAL_S} s, run of ${RUN_SECONDS} s, ${LATENCY_RUNS} latency samples each`);
  for (const r of results) {
    console.log(
      `  ${r.generation.padEnd(8)} steps ${r.readSteps ? 'on ' : 'off'}  ${String(r.requestsPerMinute).padStart(6)} requests/min while running   ` +
        `finish → output: mean ${r.latencyMs.mean} ms (min ${r.latencyMs.min}, max ${r.latencyMs.max})`,
    );
  }
  const out = path.resolve(__dirname, '..', '..', 'bench', 'out');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'ot2-polling.json'), JSON.stringify({ intervalS: INTERVAL_S, runSeconds: RUN_SECONDS, results }, null, 2));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
