/**
 * ot2-run in a real Node-RED against the simulated robot-server (8.1.0, plus an 8.2 robot that can
 * delete data files, a 7.3 and a 4.7 one) over real HTTP: a protocol with a CSV runtime parameter
 * runs with the file benchling-generate-input produced (POST /dataFiles, ids on the analysis and
 * the run); a missing or misnamed CSV parameter, a bad runtime value, CSV files on 7.x/4.x and
 * offsets on 4.x are clear Catch-able errors before anything runs; data files the node created
 * are cleaned up; labware offsets given or taken from the most recent run of the protocol; the
 * status counts "step N of M" and ends red for failed / stopped / analysis-failed.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_API_KEY, OpentronsSim, SEED, startLabSimulator, type LabSimulator } from '../simulator';
import { helper, loadFlow, nextMessage, tempDir, unload } from './support/nodered';

const TYPES = ['catch', 'benchling-tenant', 'benchling-generate-input', 'ot2-robot', 'ot2-run'];
const CSV_PARAMS = [
  'parameters.add_csv_file(variable_name="plate_map", display_name="Plate map")',
  'parameters.add_int(variable_name="mix_reps", display_name="Mix repetitions", default=0, minimum=0, maximum=5)',
  'parameters.add_str(variable_name="speed", display_name="Speed", default="fast", choices=[{"display_name": "Fast", "value": "fast"}, {"display_name": "Slow", "value": "slow"}])',
  'parameters.add_bool(variable_name="dry_run", display_name="Dry run", default=False)',
];

function protocol(opts: { params?: string[]; marker?: string; name?: string } = {}): string {
  return (
    `metadata = {'protocolName': '${opts.name ?? 'plate prep'}'}\nrequirements = {'robotType': 'OT-2', 'apiLevel': '2.20'}\n# sim-steps: csv\n` +
    (opts.marker ? `# ${opts.marker}\n` : '') +
    (opts.params ? `def add_parameters(parameters):\n${opts.params.map((p) => `    ${p}\n`).join('')}\n` : '') +
    'def run(protocol):\n    rows = protocol.params.plate_map.parse_as_csv()\n'
  );
}

describe('ot2-run: CSV runtime parameters, value checks, labware offsets (Node-RED + simulators)', () => {
  let lab: LabSimulator;
  let newer: OpentronsSim; // robot software 8.2: has DELETE /dataFiles/{id}
  let v7: OpentronsSim;
  let dir: string;
  const timing = { stepMs: 20, analysisMs: 20, loadMs: 20, settleMs: 5 };

  before(async () => {
    lab = await startLabSimulator({ benchling: { rateLimit: false, taskDurationMs: 30 }, ot2: { runs: timing, sessions: timing } });
    newer = await new OpentronsSim({ generation: 'runs', apiVersion: '8.2.0', ...timing }).start();
    v7 = await new OpentronsSim({ generation: 'runs', apiVersion: '7.3.0', ...timing }).start();
    dir = tempDir('ot2-csv');
    await helper.startServer();
  });
  afterEach(() => unload());
  after(async () => {
    await helper.stopServer();
    await newer.close();
    await v7.close();
    await lab.close();
  });

  let n = 0;
  function file(text: string, ext = '.py'): string {
    const f = path.join(dir, `p${++n}${ext}`);
    fs.writeFileSync(f, text);
    return f;
  }

  function flow(robotUrl: string, run: Record<string, unknown> = {}) {
    return [
      { id: 'tab', type: 'tab', label: 'csv' },
      { id: 'tenant', type: 'benchling-tenant', z: 'tab', url: lab.benchling.url, rateLimit: 600, timeout: 5 },
      { id: 'gen', type: 'benchling-generate-input', z: 'tab', tenant: 'tenant', assayRunId: 'assayRunId', assayRunIdType: 'msg', configName: SEED.inputConfigName, configNameType: 'str', output: 'payload', interval: 0.05, wires: [['generated']] },
      { id: 'robot', type: 'ot2-robot', z: 'tab', host: robotUrl, generation: 'auto', timeout: 5 },
      { id: 'run', type: 'ot2-run', z: 'tab', robot: 'robot', protocol: 'payload', protocolType: 'msg', protocolNameType: 'none', supportFilesType: 'none', parameters: 'runTimeParameters', parametersType: 'msg', interval: 0.02, loadTimeout: 5, wires: [['finished'], ['failed']], ...run },
      { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'generated', type: 'helper', z: 'tab' },
      { id: 'finished', type: 'helper', z: 'tab' },
      { id: 'failed', type: 'helper', z: 'tab' },
      { id: 'caught', type: 'helper', z: 'tab' },
    ];
  }
  const load = (robotUrl: string, run: Record<string, unknown> = {}) => loadFlow(TYPES, flow(robotUrl, run), { tenant: { apiKey: DEFAULT_API_KEY } });

  /** The message benchling-generate-input produced for the seeded run (its payload: the CSV as a Buffer). */
  async function generated(h: Awaited<ReturnType<typeof load>>): Promise<Record<string, any>> {
    const out = nextMessage(h.getNode('generated'), 15_000);
    h.getNode('gen').receive({ assayRunId: SEED.runs[0].id });
    return out;
  }

  /** Sends a message to ot2-run and expects a Catch error; returns its text. */
  async function refused(h: Awaited<ReturnType<typeof load>>, msg: Record<string, unknown>): Promise<{ message: string; code?: string }> {
    const caught = nextMessage(h.getNode('caught'));
    const finished = nextMessage(h.getNode('finished'), 15_000).then(() => Promise.reject(new Error('ran although it should have been refused')));
    finished.catch(() => undefined);
    h.getNode('run').receive(msg);
    return (await Promise.race([caught, finished])).error;
  }

  const sim = () => lab.ot2.runs;
  const lastStatus = (h: any) => h.getNode('run').status.lastCall.args[0] as { fill: string; shape: string; text: string };

  test('a protocol with a CSV parameter runs with the file from benchling-generate-input (8.1.0): ids on analysis and run, steps of M', async () => {
    const h = await load(sim().url);
    const gen = await generated(h);
    assert.ok(Buffer.isBuffer(gen.payload));
    const before = sim().requestLog.length;
    const out = nextMessage(h.getNode('finished'), 15_000);
    h.getNode('run').receive({ payload: file(protocol({ params: CSV_PARAMS })), runTimeParameterFiles: { plate_map: gen }, runTimeParameters: { mix_reps: 2, speed: 'slow' } });
    const msg = await out;
    assert.equal(msg.payload.outcome, 'succeeded');
    const [pf] = msg.payload.parameterFiles;
    assert.equal(pf.parameter, 'plate_map');
    assert.equal(pf.name, gen.filename);
    const stored = sim().dataFilesEver.find((f) => f.id === pf.id)!;
    assert.ok(stored.data.equals(gen.payload), 'the robot holds the generated CSV byte for byte');
    const up = sim().uploads.find((u) => u.id === msg.payload.protocolId)!;
    const analysed = up.analyses[up.analyses.length - 1];
    assert.deepEqual(analysed.files, { plate_map: pf.id }, 'the analysis named the file');
    assert.deepEqual(analysed.values, { mix_reps: 2, speed: 'slow' });
    const run = sim().allRuns.find((r) => r.id === msg.payload.runId)!;
    assert.deepEqual(run.runTimeParameterFiles, { plate_map: pf.id }, 'the run named the file');
    const rows = gen.payload.toString('utf8').trim().split('\n').length - 1;
    assert.equal(run.commands.length, rows, 'one step per CSV row: the protocol read the file');
    const texts: string[] = h.getNode('run').status.args.map((a: any[]) => a[0].text);
    const counted = texts.filter((t) => /^running: step \d+ of \d+/.test(t));
    assert.ok(counted.length && counted.every((t) => t.includes(` of ${rows} `)), texts.join(' | '));
    assert.equal(lastStatus(h).fill, 'green');
    // 8.1.0 has no DELETE for data files: none is sent (the robot drops the oldest beyond 50 itself).
    const sent = sim().requestLog.slice(before);
    assert.ok(!sent.some((r) => r.method === 'DELETE' && r.path.startsWith('/dataFiles')), 'no DELETE /dataFiles on 8.1');
    assert.equal(sim().liveProtocols().length, 0);
    assert.equal(sim().liveRuns().length, 0);
    // the same content again: the robot's file is reused (200), not uploaded anew
    const again = nextMessage(h.getNode('finished'), 15_000);
    h.getNode('run').receive({ payload: file(protocol({ params: CSV_PARAMS })), runTimeParameterFiles: { plate_map: { name: 'again.csv', data: gen.payload } } });
    const m2 = await again;
    assert.equal(m2.payload.parameterFiles[0].id, pf.id);
    assert.equal(m2.payload.parameterFiles[0].reused, true);
  });

  test('data files the node created are deleted afterwards on software that can (8.2), kept with keep, a reused one is never deleted', async () => {
    const h = await load(newer.url);
    const csv = file('Well,Volume_uL\nA1,10\nA2,20\n', '.csv');
    const out = nextMessage(h.getNode('finished'), 15_000);
    h.getNode('run').receive({ payload: file(protocol({ params: CSV_PARAMS })), runTimeParameterFiles: { plate_map: csv } });
    const msg = await out;
    assert.equal(msg.payload.outcome, 'succeeded');
    assert.equal(newer.dataFiles.size, 0, 'the data file was deleted');
    assert.ok(newer.requestLog.some((r) => r.method === 'DELETE' && r.path === `/dataFiles/${msg.payload.parameterFiles[0].id}`));
    // keep: everything stays
    const kept = nextMessage(h.getNode('finished'), 15_000);
    h.getNode('run').receive({ payload: file(protocol({ params: CSV_PARAMS })), runTimeParameterFiles: { plate_map: csv }, keep: true });
    const k = await kept;
    assert.ok(newer.dataFiles.has(k.payload.parameterFiles[0].id), 'kept');
    // that file is now on the robot: a run with the same content reuses it and leaves it there
    const reuse = nextMessage(h.getNode('finished'), 15_000);
    h.getNode('run').receive({ payload: file(protocol({ params: CSV_PARAMS })), runTimeParameterFiles: { plate_map: csv } });
    const r = await reuse;
    assert.equal(r.payload.parameterFiles[0].reused, true);
    assert.ok(newer.dataFiles.has(k.payload.parameterFiles[0].id), 'a file the node did not create is not deleted');
  });

  test('a misnamed or missing CSV parameter is a Catch-able error naming the protocol\'s CSV parameters, before anything runs; files cleaned up', async () => {
    const h = await load(newer.url);
    const csv = file('Well,Volume_uL\nB1,5\n', '.csv');
    const runsBefore = newer.allRuns.length;
    const protocolsBefore = newer.liveProtocols().length; // the kept one of the test before
    const filesBefore = newer.dataFiles.size;
    const everBefore = newer.dataFilesEver.length;
    const misnamed = await refused(h, { payload: file(protocol({ params: CSV_PARAMS })), runTimeParameterFiles: { platemap: csv } });
    assert.match(misnamed.message, /no CSV parameter "platemap"; its CSV parameters: plate_map/);
    assert.equal(misnamed.code, 'BAD_INPUT');
    const missing = await refused(h, { payload: file(protocol({ params: CSV_PARAMS })) });
    assert.match(missing.message, /needs a file for its CSV parameter\(s\) plate_map/);
    const none = await refused(h, { payload: file(protocol({ params: [CSV_PARAMS[1]] })), runTimeParameterFiles: { plate_map: csv } });
    assert.match(none.message, /declares no CSV parameter at all/);
    const notCsv = await refused(h, { payload: file(protocol({ params: CSV_PARAMS })), runTimeParameterFiles: { plate_map: file('x', '.txt') } });
    assert.match(notCsv.message, /only \.csv files/);
    const bad = await refused(h, { payload: file(protocol({ params: CSV_PARAMS })), runTimeParameterFiles: { plate_map: 42 } });
    assert.match(bad.message, /CSV parameter "plate_map": give a file path/);
    assert.equal(newer.allRuns.length, runsBefore, 'no run was created');
    assert.equal(newer.liveProtocols().length, protocolsBefore, 'the protocols were removed');
    assert.equal(newer.dataFiles.size, filesBefore, 'the data files the node uploaded were removed');
    assert.ok(newer.dataFilesEver.length > everBefore, 'files were uploaded before the check refused them');
  });

  test('bad runtime parameter values are refused naming the parameter and the rule, before anything runs', async () => {
    const h = await load(sim().url);
    const csv = file('Well,Volume_uL\nC1,5\n', '.csv');
    const runsBefore = sim().allRuns.length;
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ mix_reps: 9 }, /"mix_reps" must be between 0 and 5, not 9/],
      [{ mix_reps: 1.5 }, /"mix_reps" must be a whole number, not 1.5/],
      [{ speed: 'turbo' }, /"speed" must be one of "fast", "slow", not "turbo"/],
      [{ dry_run: 'yes' }, /"dry_run" must be true or false, not "yes"/],
      [{ volume: 3 }, /no runtime parameter "volume"; its parameters: mix_reps, speed, dry_run/],
      [{ plate_map: 'x.csv' }, /"plate_map" is a CSV file parameter/],
    ];
    for (const [values, re] of cases) {
      const e = await refused(h, { payload: file(protocol({ params: CSV_PARAMS })), runTimeParameterFiles: { plate_map: csv }, runTimeParameters: values });
      assert.match(e.message, re);
    }
    assert.equal(sim().allRuns.length, runsBefore, 'no run was created (the robot would have answered 500)');
    // Values equal to the defaults: the robot keeps its analysis (200 on POST …/analyses); the run goes ahead.
    const out = nextMessage(h.getNode('finished'), 15_000);
    h.getNode('run').receive({ payload: file(protocol({ params: CSV_PARAMS.slice(1) }).replace('# sim-steps: csv', '# sim-steps: 2')), runTimeParameters: { mix_reps: 0, speed: 'fast' } });
    const ok = await out;
    assert.equal(ok.payload.outcome, 'succeeded');
    const up = sim().uploads.find((u) => u.id === ok.payload.protocolId)!;
    assert.equal(up.analyses.length, 1, 'no second analysis for the default values');
    assert.deepEqual(sim().allRuns.find((r) => r.id === ok.payload.runId)!.runTimeParameterValues, { mix_reps: 0, speed: 'fast' });
    assert.equal(sim().liveProtocols().length, 0);
  });

  test('CSV files on 7.x and 4.x, offsets on 4.x: clear errors saying which robot software is needed', async () => {
    const csv = file('Well\nA1\n', '.csv');
    let h = await load(v7.url);
    assert.match((await refused(h, { payload: file(protocol({ params: CSV_PARAMS })), runTimeParameterFiles: { plate_map: csv } })).message, /need robot software 8\.0 or later; this robot runs 7\.3\.0/);
    assert.equal(v7.uploads.length, 0, 'nothing uploaded');
    await unload();
    h = await load(lab.ot2.sessions.url);
    assert.match((await refused(h, { payload: file(protocol()), runTimeParameterFiles: { plate_map: csv } })).message, /need robot software 8\.0 or later; this robot runs 4\.x/);
    const offsets = [{ definitionUri: 'opentrons/corning_96_wellplate_360ul_flat/2', location: { slotName: '1' }, vector: { x: 0.5, y: 0, z: 0 } }];
    assert.match((await refused(h, { payload: file(protocol()), labwareOffsets: offsets })).message, /labware offsets need robot software 5\.0 or later; this robot runs 4\.x/);
    assert.equal(lab.ot2.sessions.uploads.length, 0, 'nothing uploaded');
  });

  test('labware offsets: msg.labwareOffsets on POST /runs; "most recent run of this protocol" takes an App run\'s offsets', async () => {
    const h = await load(sim().url, { recentOffsets: false });
    const offsets = [{ definitionUri: 'opentrons/corning_96_wellplate_360ul_flat/2', location: { slotName: '3' }, vector: { x: 0.5, y: -0.25, z: 1 } }];
    const text = protocol({ name: 'offset check' }).replace('# sim-steps: csv', '# sim-steps: 2');
    let out = nextMessage(h.getNode('finished'));
    h.getNode('run').receive({ payload: file(text), labwareOffsets: offsets });
    let msg = await out;
    const run = sim().allRuns.find((r) => r.id === msg.payload.runId)!;
    assert.deepEqual(run.labwareOffsets.map((o) => ({ definitionUri: o.definitionUri, location: o.location, vector: o.vector })), offsets);
    assert.ok(run.labwareOffsets.every((o) => typeof o.id === 'string' && typeof o.createdAt === 'string'));
    assert.match((await refused(h, { payload: file(text), labwareOffsets: [{ definitionUri: 'x', location: {}, vector: { x: 1 } }] })).message, /labware offset 1 is not in the robot's shape/);

    // "The App" runs the same protocol with offsets from Labware Position Check, and leaves the run.
    const form = new FormData();
    form.append('files', new Blob([text]), 'offset_check_from_app.py');
    const up = (await (await fetch(`${sim().url}/protocols`, { method: 'POST', headers: { 'Opentrons-Version': '*' }, body: form })).json()) as any;
    const appOffsets = [{ definitionUri: 'opentrons/opentrons_96_tiprack_300ul/1', location: { slotName: '1' }, vector: { x: 0.1, y: 0.2, z: -0.3 } }];
    const appRun = (await (await fetch(`${sim().url}/runs`, { method: 'POST', headers: { 'Opentrons-Version': '*', 'Content-Type': 'application/json' }, body: JSON.stringify({ data: { protocolId: up.data.id, labwareOffsets: appOffsets } }) })).json()) as any;
    await unload();
    const h2 = await load(sim().url, { recentOffsets: true });
    out = nextMessage(h2.getNode('finished'));
    h2.getNode('run').receive({ payload: file(text) });
    msg = await out;
    assert.equal(msg.payload.labwareOffsetsFromRun, appRun.data.id);
    const ours = sim().allRuns.find((r) => r.id === msg.payload.runId)!;
    assert.deepEqual(ours.labwareOffsets.map((o) => o.vector), [appOffsets[0].vector]);
    // no earlier run of a protocol of that name: runs without offsets, with a warning
    out = nextMessage(h2.getNode('finished'));
    h2.getNode('run').receive({ payload: file(protocol({ name: 'never ran before' }).replace('# sim-steps: csv', '# sim-steps: 2')) });
    msg = await out;
    assert.match(msg.payload.warnings.join(), /no earlier run of protocol "never ran before" with labware offsets/);
    assert.deepEqual(sim().allRuns.find((r) => r.id === msg.payload.runId)!.labwareOffsets, []);
    await fetch(`${sim().url}/runs/${appRun.data.id}`, { method: 'DELETE', headers: { 'Opentrons-Version': '*' } });
    await fetch(`${sim().url}/protocols/${up.data.id}`, { method: 'DELETE', headers: { 'Opentrons-Version': '*' } });
  });

  test('the final dot is red for failed, stopped and analysis-failed, green for succeeded', async () => {
    const h = await load(sim().url);
    const two = (marker?: string) => file(protocol({ marker }).replace('# sim-steps: csv', '# sim-steps: 2'));
    for (const [marker, outcome] of [['SIM_RUN_ERROR', 'failed'], ['SIM_ANALYSIS_ERROR', 'not-loaded']] as const) {
      const out = nextMessage(h.getNode('failed'));
      h.getNode('run').receive({ payload: two(marker) });
      assert.equal((await out).payload.outcome, outcome);
      const st = lastStatus(h);
      assert.equal(st.fill, 'red', st.text);
      assert.equal(st.shape, 'dot');
    }
    const out = nextMessage(h.getNode('failed'));
    h.getNode('run').receive({ payload: file(protocol().replace('# sim-steps: csv', '# sim-steps: 200')) });
    for (const end = Date.now() + 15_000; !sim().liveRuns().some((r) => r.status === 'running'); await new Promise((r) => setTimeout(r, 5))) {
      if (Date.now() > end) throw new Error('the run never started');
    }
    h.getNode('run').receive({ command: 'cancel' });
    assert.equal((await out).payload.outcome, 'stopped');
    assert.equal(lastStatus(h).fill, 'red');
  });
});
