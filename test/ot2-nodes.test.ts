/**
 * ot2-robot + ot2-run inside a real Node-RED runtime, against both simulated robot generations
 * (4.x protocol sessions and 8.x runs) over real HTTP: full run, pause/resume, cancel, failing
 * protocol, analysis error, feature flag off, one-protocol rule, busy robot, door, connection lost
 * mid-run, Node-RED closed mid-run (leave / stop), support files and runtime parameters intact.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, type LabSimulator, type OpentronsSim } from '../simulator';
import { helper, loadFlow, nextMessage, tempDir, unload, delay } from './support/nodered';

type Gen = 'runs' | 'sessions';
const GENS: Gen[] = ['runs', 'sessions'];

/** An add_parameters body declaring reps (int 1–8), volume (float 1–100), dry_run (bool), mode (str: fast|slow). */
const PARAMS = [
  'parameters.add_int(variable_name="reps", display_name="Repeats", default=2, minimum=1, maximum=8)',
  'parameters.add_float(variable_name="volume", display_name="Volume", default=10.0, minimum=1.0, maximum=100.0)',
  'parameters.add_bool(variable_name="dry_run", display_name="Dry run", default=False)',
  'parameters.add_str(variable_name="mode", display_name="Mode", default="fast", choices=[{"display_name": "Fast", "value": "fast"}, {"display_name": "Slow", "value": "slow"}])',
];

function protocolText(opts: { steps?: number | 'csv'; marker?: string; parameters?: string[]; name?: string } = {}): string {
  return (
    `metadata = {'protocolName': '${opts.name ?? 'labwire test'}', 'apiLevel': '${opts.parameters ? '2.20' : '2.13'}'}\n` +
    `# sim-steps: ${opts.steps ?? 4}\n` +
    (opts.marker ? `# ${opts.marker}\n` : '') +
    (opts.parameters ? `def add_parameters(parameters):\n${opts.parameters.map((p) => `    ${p}\n`).join('')}\n` : '') +
    'def run(protocol):\n    protocol.comment("hello")\n'
  );
}

async function waitFor(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

interface FlowOpts {
  generation?: Gen | 'auto';
  onClose?: 'leave' | 'stop';
  replaceExisting?: boolean;
  keep?: boolean;
  readSteps?: boolean;
  offlineTimeout?: number;
  supportFiles?: string;
  supportFilesType?: string;
}

describe('ot2-run in Node-RED', () => {
  let lab: LabSimulator;
  let dir: string;

  before(async () => {
    const timing = { stepMs: 40, analysisMs: 30, loadMs: 30, settleMs: 10 };
    lab = await startLabSimulator({ ot2: { runs: timing, sessions: timing } });
    dir = tempDir('ot2-nodes');
    await helper.startServer();
  });
  afterEach(async () => {
    await unload();
    for (const sim of [lab.ot2.runs, lab.ot2.sessions]) {
      sim.release();
      sim.closeDoor();
      sim.setFeatureFlag(true);
    }
  });
  after(async () => {
    await helper.stopServer();
    await lab.close();
  });

  const sim = (g: Gen): OpentronsSim => (g === 'runs' ? lab.ot2.runs : lab.ot2.sessions);

  function flow(g: Gen, o: FlowOpts = {}) {
    return [
      { id: 'tab', type: 'tab', label: 'ot2' },
      { id: 'robot', type: 'ot2-robot', z: 'tab', host: sim(g).url, generation: o.generation ?? 'auto', timeout: 5 },
      {
        id: 'run',
        type: 'ot2-run',
        z: 'tab',
        robot: 'robot',
        protocol: 'payload',
        protocolType: 'msg',
        protocolName: 'filename',
        protocolNameType: 'msg',
        supportFiles: o.supportFiles ?? 'supportFiles',
        supportFilesType: o.supportFilesType ?? 'msg',
        parameters: 'runTimeParameters',
        parametersType: 'msg',
        keep: o.keep ?? false,
        replaceExisting: o.replaceExisting ?? true,
        onClose: o.onClose ?? 'leave',
        interval: 0.02,
        loadTimeout: 5,
        runTimeout: 0,
        offlineTimeout: o.offlineTimeout ?? 30,
        readSteps: o.readSteps ?? true,
        wires: [['finished'], ['failed']],
      },
      { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'finished', type: 'helper', z: 'tab' },
      { id: 'failed', type: 'helper', z: 'tab' },
      { id: 'caught', type: 'helper', z: 'tab' },
    ];
  }

  const load = (g: Gen, o: FlowOpts = {}, userDir?: string) => loadFlow(['catch', 'ot2-robot', 'ot2-run'], flow(g, o), {}, userDir);

  let n = 0;
  function file(text: string, ext = '.py'): string {
    const f = path.join(dir, `proto_${++n}${ext}`);
    fs.writeFileSync(f, text);
    return f;
  }

  const statuses = (h: any) => h.getNode('run').status.args.map((a: any[]) => a[0].text as string);
  const executing = (g: Gen) =>
    g === 'runs' ? sim(g).liveRuns().find((r) => !r.foreign && r.status === 'running') : sim(g).liveSessions().find((s) => !s.foreign && s.state === 'running');
  const nothingLeft = (g: Gen) => {
    const s = sim(g);
    assert.equal(s.liveProtocols().length, 0, 'protocol deleted');
    assert.equal(g === 'runs' ? s.liveRuns().length : s.liveSessions().length, 0, 'run/session deleted');
  };

  for (const g of GENS) {
    test(`${g}: full run → finished output, status with state and step, robot cleaned up`, async () => {
      const h = await load(g);
      const out = nextMessage(h.getNode('finished'));
      h.getNode('run').receive({ payload: file(protocolText()), topic: 'plate 7' });
      const msg = await out;
      assert.equal(msg.topic, 'plate 7');
      assert.equal(msg.payload.outcome, 'succeeded');
      assert.equal(msg.payload.state, g === 'runs' ? 'succeeded' : 'finished');
      assert.equal(msg.payload.generation, g);
      assert.ok(msg.payload.durationMs >= 100, `duration ${msg.payload.durationMs}`);
      assert.deepEqual(msg.payload.errors, []);
      const st = statuses(h);
      assert.ok(st.some((t: string) => /^running: .*Step \d/.test(t)), st.join(' | '));
      // "step N of M": M is the analysis's command count (4), not the robot's commands so far.
      if (g === 'runs') {
        const counted = st.filter((t: string) => /^running: step \d+ of \d+/.test(t));
        assert.ok(counted.length && counted.every((t: string) => / of 4\b/.test(t)), st.join(' | '));
      }
      assert.ok(st.includes('uploading'));
      nothingLeft(g);
    });

    test(`${g}: pause and resume via msg.command`, async () => {
      const h = await load(g);
      const out = nextMessage(h.getNode('finished'));
      h.getNode('run').receive({ payload: file(protocolText({ steps: 6 })) });
      await waitFor(() => !!executing(g), 5000, 'running');
      h.getNode('run').receive({ command: 'pause' });
      await waitFor(() => (g === 'runs' ? sim(g).liveRuns()[0]?.status === 'paused' : sim(g).liveSessions()[0]?.state === 'paused'), 2000, 'paused');
      await waitFor(() => statuses(h).includes('paused'), 2000, 'paused status');
      await delay(150); // stays paused
      const stillPaused = g === 'runs' ? sim(g).liveRuns()[0].status : sim(g).liveSessions()[0].state;
      assert.equal(stillPaused, 'paused');
      h.getNode('run').receive({ command: 'resume' });
      const msg = await out;
      assert.equal(msg.payload.outcome, 'succeeded');
    });

    test(`${g}: cancel → failed output with outcome stopped`, async () => {
      const h = await load(g);
      const out = nextMessage(h.getNode('failed'));
      h.getNode('run').receive({ payload: file(protocolText({ steps: 20 })) });
      await waitFor(() => !!executing(g), 5000, 'running');
      h.getNode('run').receive({ command: 'cancel' });
      const msg = await out;
      assert.equal(msg.payload.outcome, 'stopped');
      assert.equal(msg.payload.state, 'stopped');
      nothingLeft(g);
    });

    test(`${g}: a protocol that raises mid-run → failed output with the robot's error`, async () => {
      const h = await load(g);
      const out = nextMessage(h.getNode('failed'));
      h.getNode('run').receive({ payload: file(protocolText({ marker: 'SIM_RUN_ERROR' })) });
      const msg = await out;
      assert.equal(msg.payload.outcome, 'failed');
      assert.equal(msg.payload.state, g === 'runs' ? 'failed' : 'error');
      assert.match(msg.payload.errors[0].detail, /SIM_RUN_ERROR/);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(h.getNode('run').status.lastCall.args[0].fill, 'red', 'a failed run ends red');
      nothingLeft(g);
    });

    test(`${g}: analysis error → failed output "not-loaded" with errors, never started`, async () => {
      const h = await load(g);
      const out = nextMessage(h.getNode('failed'));
      const runsBefore = sim(g).allRuns.length;
      h.getNode('run').receive({ payload: file(protocolText({ marker: 'SIM_ANALYSIS_ERROR' })) });
      const msg = await out;
      assert.equal(msg.payload.outcome, 'not-loaded');
      assert.match(msg.payload.errors[0].detail, /SIM_ANALYSIS_ERROR/);
      assert.ok(msg.payload.errors[0].line > 0);
      if (g === 'runs') assert.equal(sim(g).allRuns.length, runsBefore, 'no run created');
      else assert.ok(!sim(g).allSessions.some((s) => s.protocolId === msg.payload.protocolId), 'no session created');
      nothingLeft(g);
    });

    test(`${g}: robot busy with another run → Catch error saying so; nothing left behind`, async () => {
      sim(g).occupy();
      const h = await load(g);
      const caught = nextMessage(h.getNode('caught'));
      h.getNode('run').receive({ payload: file(protocolText()), topic: 'busy' });
      const msg = await caught;
      assert.equal(msg.topic, 'busy', 'Catch gets the original msg');
      assert.match(msg.error.message, /robot is busy with another run/);
      assert.equal(sim(g).liveProtocols().filter((p) => !/someone/.test(p.id)).length, 0);
      const last = h.getNode('run').status.lastCall.args[0];
      assert.equal(last.fill, 'red');
    });

    test(`${g}: connection lost mid-run → keeps polling, recovers, one start only`, async () => {
      const h = await load(g);
      const out = nextMessage(h.getNode('finished'), 15_000);
      h.getNode('run').receive({ payload: file(protocolText({ steps: 10 })) });
      await waitFor(() => !!executing(g), 5000, 'running');
      sim(g).goOffline(700);
      const msg = await out;
      assert.equal(msg.payload.outcome, 'succeeded');
      assert.ok(statuses(h).some((t: string) => /robot unreachable, retrying/.test(t)), statuses(h).join(' | '));
      const starts = g === 'runs' ? sim(g).allRuns.at(-1)!.actions.filter((a) => a.actionType === 'play').length : sim(g).allSessions.at(-1)!.startRuns;
      assert.equal(starts, 1);
    });

    test(`${g}: the answer to the start is lost → the robot's record is checked, never started twice`, async () => {
      const h = await load(g);
      const out = nextMessage(h.getNode('finished'), 15_000);
      sim(g).dropNextResponse({ method: 'POST', path: g === 'runs' ? /\/actions$/ : /\/commands\/execute$/ });
      h.getNode('run').receive({ payload: file(protocolText()) });
      const msg = await out;
      assert.equal(msg.payload.outcome, 'succeeded');
      const starts = g === 'runs' ? sim(g).allRuns.at(-1)!.actions.filter((a) => a.actionType === 'play').length : sim(g).allSessions.at(-1)!.startRuns;
      assert.equal(starts, 1);
    });

    test(`${g}: Node-RED closed mid-run, "leave running" → robot keeps going; after restart the node reattaches, reports and cleans up`, async () => {
      const userDir = tempDir('ot2-leave');
      let h = await load(g, { onClose: 'leave' }, userDir);
      h.getNode('run').receive({ payload: file(protocolText({ steps: 12 })), topic: 'night run' });
      await waitFor(() => !!executing(g), 5000, 'running');
      await unload();
      await delay(60);
      assert.ok(executing(g), 'still running on the robot after Node-RED stopped');
      h = await load(g, { onClose: 'leave' }, userDir);
      const msg = await nextMessage(h.getNode('finished'), 10_000);
      assert.equal(msg.reattached, true);
      assert.equal(msg.topic, 'night run');
      assert.equal(msg.payload.outcome, 'succeeded');
      const starts = g === 'runs' ? sim(g).allRuns.at(-1)!.actions.filter((a) => a.actionType === 'play').length : sim(g).allSessions.at(-1)!.startRuns;
      assert.equal(starts, 1, 'not started again');
      // after the restart, M of "step N of M" still comes from the analysis (12 steps)
      if (g === 'runs') {
        const counted = statuses(h).filter((t: string) => /^running: step \d+ of \d+/.test(t));
        assert.ok(counted.every((t: string) => / of 12\b/.test(t)), counted.join(' | '));
      }
      nothingLeft(g);
    });

    test(`${g}: Node-RED closed before the start → after restart the protocol is not started, only removed`, async () => {
      const userDir = tempDir('ot2-prestart');
      sim(g).setTiming({ analysisMs: 400, loadMs: 400 });
      try {
        const uploadsBefore = sim(g).uploads.length;
        let h = await load(g, { onClose: 'leave' }, userDir);
        h.getNode('run').receive({ payload: file(protocolText()), topic: 'early' });
        await waitFor(() => sim(g).uploads.length > uploadsBefore, 5000, 'upload');
        await unload();
        assert.equal(sim(g).liveProtocols().length, 1, 'left on the robot while Node-RED is down');
        h = await load(g, { onClose: 'leave' }, userDir);
        const msg = await nextMessage(h.getNode('failed'), 10_000);
        assert.equal(msg.reattached, true);
        assert.equal(msg.payload.outcome, 'stopped');
        assert.match(msg.payload.errors[0].detail, /nothing ran/);
        const started = g === 'runs' ? sim(g).allRuns.some((r) => r.actions.some((a) => a.actionType === 'play') && r.protocolId === msg.payload.protocolId) : sim(g).allSessions.some((x) => x.protocolId === msg.payload.protocolId && x.startRuns > 0);
        assert.equal(started, false, 'never started');
        nothingLeft(g);
      } finally {
        sim(g).setTiming({ analysisMs: 30, loadMs: 30 });
      }
    });

    test(`${g}: Node-RED closed mid-run, "stop the run" → run stopped and removed from the robot`, async () => {
      const h = await load(g, { onClose: 'stop' });
      h.getNode('run').receive({ payload: file(protocolText({ steps: 30 })) });
      await waitFor(() => !!executing(g), 5000, 'running');
      const id = g === 'runs' ? sim(g).allRuns.at(-1)!.id : sim(g).allSessions.at(-1)!.id;
      assert.ok(h.getNode('run'));
      await unload();
      const rec = g === 'runs' ? sim(g).allRuns.find((r) => r.id === id)! : sim(g).allSessions.find((s) => s.id === id)!;
      assert.equal('status' in rec ? rec.status : rec.state, 'stopped');
      nothingLeft(g);
      assert.ok(!executing(g));
    });

    test(`${g}: Node-RED closed while the run is being created, "stop the run" → the run made meanwhile is removed`, async () => {
      const h = await load(g, { onClose: 'stop' });
      const count = () => (g === 'runs' ? sim(g).allRuns.length : sim(g).allSessions.length);
      const before = count();
      // the robot creates the run at once, but its answer (the id) is still on the way at the stop
      sim(g).setAnswerDelay({ method: 'POST', path: g === 'runs' ? /^\/runs$/ : /^\/sessions$/, ms: 500 });
      try {
        h.getNode('run').receive({ payload: file(protocolText()) });
        await waitFor(() => count() > before, 5000, 'run created');
        await unload();
      } finally {
        sim(g).setAnswerDelay(null);
      }
      nothingLeft(g);
      assert.ok(!executing(g));
    });

    test(`${g}: door open when starting → Catch error naming the door`, async () => {
      sim(g).openDoor();
      const h = await load(g);
      const caught = nextMessage(h.getNode('caught'));
      h.getNode('run').receive({ payload: file(protocolText()) });
      const msg = await caught;
      assert.match(msg.error.message, /door is open/);
      nothingLeft(g);
    });

    test(`${g}: door opened mid-run → status "door open"; after closing, resume finishes the run`, async () => {
      const h = await load(g);
      const out = nextMessage(h.getNode('finished'));
      h.getNode('run').receive({ payload: file(protocolText({ steps: 8 })) });
      await waitFor(() => !!executing(g), 5000, 'running');
      sim(g).openDoor();
      await waitFor(() => statuses(h).some((t: string) => t === (g === 'runs' ? 'door open' : 'paused')), 2000, 'door status');
      sim(g).closeDoor();
      h.getNode('run').receive({ command: 'resume' });
      assert.equal((await out).payload.outcome, 'succeeded');
    });
  }

  test('sessions: feature flag off → Catch error telling to enable "Experimental HTTP Protocol Sessions"; nothing uploaded', async () => {
    sim('sessions').setFeatureFlag(false);
    const before = sim('sessions').uploads.length;
    const h = await load('sessions');
    const caught = nextMessage(h.getNode('caught'));
    h.getNode('run').receive({ payload: file(protocolText()) });
    const msg = await caught;
    assert.match(msg.error.message, /Experimental HTTP Protocol Sessions/);
    assert.equal(sim('sessions').uploads.length, before);
  });

  test('sessions: one protocol at a time — an old one is replaced, or (replace off) a clear error', async () => {
    const s = sim('sessions');
    // leave a protocol on the robot with keep
    let h = await load('sessions', { keep: true });
    const first = nextMessage(h.getNode('finished'));
    h.getNode('run').receive({ payload: file(protocolText({ steps: 1 })) });
    const m1 = await first;
    assert.equal(s.liveProtocols().length, 1);
    await unload();
    h = await load('sessions', { replaceExisting: false });
    const caught = nextMessage(h.getNode('caught'));
    h.getNode('run').receive({ payload: file(protocolText({ steps: 1 })) });
    assert.match((await caught).error.message, /already holds protocol .* only one protocol at a time/);
    await unload();
    h = await load('sessions');
    const second = nextMessage(h.getNode('finished'));
    h.getNode('run').receive({ payload: file(protocolText({ steps: 1 })) });
    assert.equal((await second).payload.outcome, 'succeeded');
    assert.ok(!s.liveProtocols().some((p) => p.id === m1.payload.protocolId));
    assert.equal(s.liveProtocols().length, 0);
  });

  test('runs: support files (CSV + labware JSON) and runtime parameters reach the robot intact', async () => {
    const h = await load('runs');
    const out = nextMessage(h.getNode('finished'));
    const csvBytes = Buffer.concat([Buffer.from('well,volume\n'), crypto.randomBytes(300_000)]);
    const csvPath = file('', '.csv');
    fs.writeFileSync(csvPath, csvBytes);
    const labware = Buffer.from(JSON.stringify({ parameters: { loadName: 'custom_96' }, metadata: { displayName: 'Custom' } }));
    const params = { reps: 3, volume: 42.5, dry_run: true, mode: 'fast' };
    const protoBuf = Buffer.from(protocolText({ parameters: PARAMS }));
    h.getNode('run').receive({ payload: protoBuf, filename: 'from-buffer.py', supportFiles: [csvPath, { name: 'custom_96.json', data: labware }], runTimeParameters: params });
    const msg = await out;
    assert.equal(msg.payload.outcome, 'succeeded');
    const up = sim('runs').uploads.find((u) => u.id === msg.payload.protocolId)!;
    assert.deepEqual(up.files.map((f) => [f.name, f.role]), [['from-buffer.py', 'main'], [path.basename(csvPath), 'data'], ['custom_96.json', 'labware']]);
    assert.ok(up.files[0].data.equals(protoBuf));
    assert.ok(up.files[1].data.equals(csvBytes), 'CSV bytes identical');
    assert.ok(up.files[2].data.equals(labware));
    const analysed = up.analyses[up.analyses.length - 1];
    assert.deepEqual(analysed.values, params, 'the analysis before the run got the parameters');
    assert.equal(analysed.result, 'ok');
    const run = sim('runs').allRuns.find((r) => r.id === msg.payload.runId)!;
    assert.deepEqual(run.runTimeParameterValues, params, 'run got the parameters as an object');
  });

  test('sessions: support files (data + helper module) reach the robot intact as supportFiles', async () => {
    const h = await load('sessions');
    const out = nextMessage(h.getNode('finished'));
    const data = Buffer.concat([Buffer.from('a,b\n'), crypto.randomBytes(50_000)]);
    const helperPy = Buffer.from('def volume():\n    return 50\n');
    h.getNode('run').receive({ payload: file(protocolText()), supportFiles: [{ name: 'data.csv', data }, { name: 'helpers.py', data: helperPy }] });
    const msg = await out;
    const up = sim('sessions').uploads.find((u) => u.id === msg.payload.protocolId)!;
    assert.deepEqual(up.files.map((f) => [f.field, f.name]), [['protocolFile', path.basename(up.files[0].name)], ['supportFiles', 'data.csv'], ['supportFiles', 'helpers.py']]);
    assert.ok(up.files[1].data.equals(data));
    assert.ok(up.files[2].data.equals(helperPy));
  });

  test('benchling-generate-input style: fixed protocol path, the CSV from msg.payload', async () => {
    const proto = file(protocolText());
    const h = await loadFlow(
      ['catch', 'ot2-robot', 'ot2-run'],
      flow('runs').map((n: any) => (n.id === 'run' ? { ...n, protocol: proto, protocolType: 'str', supportFiles: 'payload', supportFilesType: 'msg' } : n)),
    );
    const out = nextMessage(h.getNode('finished'));
    const csv = file('well,od\nA1,0.5\n', '.csv');
    h.getNode('run').receive({ payload: csv, filename: csv });
    const msg = await out;
    const up = sim('runs').uploads.find((u) => u.id === msg.payload.protocolId)!;
    assert.deepEqual(up.files.map((f) => f.name), [path.basename(proto), path.basename(csv)]);
  });

  test('bad input → Catch errors with clear wording', async () => {
    const cases: Array<[Gen, Record<string, unknown>, RegExp]> = [
      ['runs', {}, /protocol is missing/],
      ['runs', { payload: Buffer.from('x') }, /Buffer without a file name/],
      ['runs', { payload: path.join(dir, 'nope.py') }, /does not exist/],
      ['runs', { payload: 'FILE', supportFiles: [{ name: 'helpers.py', data: Buffer.from('x') }] }, /does not accept helper modules/],
      ['sessions', { payload: 'FILE', runTimeParameters: { reps: 2 } }, /runtime parameters need robot software 7.3/],
      ['runs', { payload: 'FILE', runTimeParameters: [1] }, /must be an object/],
      ['runs', { command: 'pause' }, /no run in progress to pause/],
      ['runs', { command: 'explode' }, /unknown command/],
    ];
    for (const [g, m, re] of cases) {
      const h = await load(g);
      const caught = nextMessage(h.getNode('caught'));
      if (m.payload === 'FILE') m.payload = file(protocolText());
      h.getNode('run').receive(m);
      const msg = await caught;
      assert.match(msg.error.message, re);
      await unload();
    }
  });
});
