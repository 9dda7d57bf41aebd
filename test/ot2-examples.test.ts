/**
 * Examples 20 ("Run a protocol on an OT-2") and 21 ("Generate the input CSV in Benchling, then run
 * the OT-2 protocol") loaded as shipped into a real Node-RED runtime, against the lab simulator:
 * the environment variables the examples name point at the simulated robots and Benchling.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, type LabSimulator, SEED, DEFAULT_API_KEY } from '../simulator';
import { helper, nextMessage, tempDir, unload } from './support/nodered';

const EXAMPLES = path.resolve(__dirname, '..', '..', 'examples');
const ENV = ['OT2_HOST', 'OT2_PROTOCOL', 'OT2_DATA_FILE', 'BENCHLING_URL', 'BENCHLING_RUN_ID', 'BENCHLING_INPUT_CONFIG', 'LAB_ROBOT_INPUTS'];

function modules(): unknown[] {
  const core = (p: string) => require(`@node-red/nodes/core/${p}`);
  const pack = (t: string) => require(path.resolve(__dirname, '..', 'nodes', `${t}.js`));
  return [
    core('common/20-inject.js'),
    core('common/25-catch.js'),
    core('common/90-comment.js'),
    core('function/15-change.js'),
    pack('benchling-tenant'),
    pack('benchling-generate-input'),
    pack('ot2-robot'),
    pack('ot2-run'),
  ];
}

describe('OT-2 examples', () => {
  let lab: LabSimulator;
  let dir: string;
  before(async () => {
    const timing = { stepMs: 30, analysisMs: 30, loadMs: 30, settleMs: 5 };
    lab = await startLabSimulator({ benchling: { rateLimit: false, taskDurationMs: 50 }, ot2: { runs: timing, sessions: timing } });
    dir = tempDir('ot2-examples');
    await helper.startServer();
  });
  afterEach(async () => {
    for (const k of ENV) delete process.env[k];
    await unload();
  });
  after(async () => {
    await helper.stopServer();
    await lab.close();
  });

  async function load(file: string, credentials: Record<string, unknown> = {}) {
    const flow = JSON.parse(fs.readFileSync(path.join(EXAMPLES, file), 'utf8')) as Array<Record<string, any>>;
    for (const n of flow) if (n.type === 'debug') n.type = 'helper';
    for (const n of flow) if (n.type === 'ot2-run') n.interval = 0.02;
    for (const n of flow) if (n.type === 'benchling-generate-input') n.interval = 0.05;
    const creds: Record<string, unknown> = {};
    const tenant = flow.find((n) => n.type === 'benchling-tenant');
    if (tenant) creds[tenant.id] = credentials;
    helper.settings({ userDir: tempDir('ot2-example-user') });
    await new Promise<void>((resolve) => helper.load(modules(), flow, creds, resolve));
    return (name: string) => helper.getNode(String(flow.find((n) => n.name === name)!.id));
  }

  for (const g of ['runs', 'sessions'] as const) {
    test(`example 20 on a ${g === 'runs' ? '8.x' : '4.x'} robot: run, then pause / resume / cancel buttons`, async () => {
      const proto = path.join(dir, `example20_${g}.py`);
      fs.writeFileSync(proto, '# sim-steps: 4\n');
      process.env.OT2_HOST = lab.ot2[g].url;
      process.env.OT2_PROTOCOL = proto;
      const byName = await load('20 - Run a protocol on an OT-2.json');
      const finished = nextMessage(byName('finished'));
      byName('run the protocol').receive({});
      const msg = await finished;
      assert.equal(msg.payload.outcome, 'succeeded');
      assert.equal(msg.payload.generation, g);
      // a long run, cancelled with the button
      fs.writeFileSync(proto, '# sim-steps: 50\n');
      const failed = nextMessage(byName('failed'));
      byName('run the protocol').receive({});
      const exec = () => (g === 'runs' ? lab.ot2.runs.liveRuns().some((r) => r.status === 'running') : lab.ot2.sessions.liveSessions().some((s) => s.state === 'running'));
      while (!exec()) await new Promise((r) => setTimeout(r, 5));
      byName('pause').receive({});
      byName('resume').receive({});
      byName('cancel').receive({});
      assert.equal((await failed).payload.outcome, 'stopped');
    });
  }

  test('example 21: Benchling generates the plate map, the shipped protocol runs with it as its CSV runtime parameter', async () => {
    const proto = path.join(EXAMPLES, 'files', 'plate-prep.py');
    const inputs = path.join(dir, 'robot-inputs');
    fs.mkdirSync(inputs, { recursive: true });
    Object.assign(process.env, {
      BENCHLING_URL: lab.benchling.url,
      BENCHLING_RUN_ID: SEED.runs[0].id,
      BENCHLING_INPUT_CONFIG: SEED.inputConfigName,
      LAB_ROBOT_INPUTS: inputs,
      OT2_HOST: lab.ot2.runs.url,
      OT2_PROTOCOL: proto,
    });
    const byName = await load('21 - Generate the input CSV in Benchling, then run the OT-2 protocol.json', { apiKey: DEFAULT_API_KEY });
    const finished = nextMessage(byName('finished'), 15_000);
    const error = nextMessage(byName('error'), 15_000).then((m) => {
      throw new Error(`example 21 failed: ${m.error.message}`);
    });
    byName('assay run').receive({});
    const msg = await Promise.race([finished, error]);
    assert.equal(msg.payload.outcome, 'succeeded');
    const upload = lab.ot2.runs.uploads.find((u) => u.id === msg.payload.protocolId)!;
    assert.deepEqual(upload.files.map((f) => f.name), ['plate-prep.py'], 'only the protocol: no per-plate protocol edit, no bundled data');
    assert.deepEqual(upload.declared.map((d) => [d.variableName, d.kind]), [['plate_map', 'csv_file'], ['mix_reps', 'int']]);
    const run = lab.ot2.runs.allRuns.find((r) => r.id === msg.payload.runId)!;
    const fileId = run.runTimeParameterFiles?.plate_map;
    assert.ok(fileId, 'the run names the data file for plate_map');
    assert.deepEqual(run.runTimeParameterValues, { mix_reps: 1 });
    const stored = lab.ot2.runs.dataFilesEver.find((f) => f.id === fileId)!;
    const files = (fs.readdirSync(inputs, { recursive: true }) as string[]).map((f) => path.join(inputs, f)).filter((f) => fs.statSync(f).isFile());
    assert.ok(files.map((f) => fs.readFileSync(f)).some((b) => b.equals(stored.data)), 'the robot got the file Benchling generated, byte for byte');
    // The simulator runs one step per plate-map row: the protocol read the file.
    const rows = stored.data.toString('utf8').trim().split('\n').length - 1;
    assert.equal(run.commands.length, rows);
    assert.deepEqual(msg.payload.parameterFiles.map((p: { parameter: string; id: string }) => [p.parameter, p.id]), [['plate_map', fileId]]);
  });
});
