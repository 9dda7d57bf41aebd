/**
 * The Genie nodes inside a real Node-RED runtime, talking HTTP to the lab simulator: success with
 * results, failure with its error, every parameter rule rejected before anything is sent (checked
 * in the simulator: no command created), kill on timeout / cancel / flow stop, unknown instrument
 * and action, a rejected token, a connection lost while polling, and the editor's admin endpoints.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startLabSimulator, LabSimulator, GENIE_SEED, DEFAULT_GENIE_TOKEN } from '../simulator';
import { helper, loadFlow, nextMessage, unload, delay } from './support/nodered';

const TYPES = ['catch', 'genie-tenant', 'genie-command'];
const FAKE_BAD_TOKEN = 'genie_FAKE_rejected_token_for_tests';
const SHAKE = { id: GENIE_SEED.shaker, time: '64580a01aa00000000000001', rpm: '64580a01aa00000000000002', mode: '64580a01aa00000000000003' };

interface CmdOptions {
  instrument?: string;
  instrumentType?: string;
  action?: string;
  actionType?: string;
  params?: Record<string, unknown>;
  timeout?: number;
  killOnStop?: boolean;
  url?: string;
}

function flow(url: string, o: CmdOptions = {}) {
  return [
    { id: 'tab', type: 'tab', label: 'genie' },
    { id: 'tenant', type: 'genie-tenant', z: 'tab', url: o.url ?? url, timeout: 5 },
    {
      id: 'cmd',
      type: 'genie-command',
      z: 'tab',
      tenant: 'tenant',
      instrument: o.instrument ?? GENIE_SEED.reader,
      instrumentType: o.instrumentType ?? 'str',
      action: o.action ?? 'Read Plate',
      actionType: o.actionType ?? 'str',
      params: o.params ?? {},
      interval: 0.03,
      maxInterval: 0.1,
      timeout: o.timeout ?? 20,
      killOnStop: o.killOnStop ?? true,
      wires: [['ok'], ['failed']],
    },
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'ok', type: 'helper', z: 'tab' },
    { id: 'failed', type: 'helper', z: 'tab' },
    { id: 'caught', type: 'helper', z: 'tab' },
  ];
}

function statuses(node: any): string[] {
  return node.status.args.map((a: any[]) => a[0].text);
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await delay(10);
  }
}

describe('Genie nodes in Node-RED', () => {
  let sim: LabSimulator;

  before(async () => {
    sim = await startLabSimulator({ benchling: { rateLimit: false }, genie: { commandDurationMs: 80, timeScaleMs: 5 } });
    await helper.startServer();
  });
  afterEach(async () => {
    sim.genie.clearFaults();
    sim.genie.setEnvelope(true);
    await unload();
  });
  after(async () => {
    await helper.stopServer();
    await sim.close();
  });

  function load(o: CmdOptions = {}, token = DEFAULT_GENIE_TOKEN) {
    return loadFlow(TYPES, flow(sim.genie.apiBase, o), { tenant: { token } });
  }

  test('success: results, message and output on output 1, the msg travels on', async () => {
    const h = await load();
    const ok = nextMessage(h.getNode('ok'));
    h.getNode('cmd').receive({ topic: 'keep me', values: { 'Plate ID': 'P-001', Wavelength: 600 } });
    const msg = await ok;
    assert.equal(msg.topic, 'keep me');
    assert.equal(msg.command.status, 'success');
    assert.equal(Object.keys(msg.payload.results.wells).length, 96);
    assert.match(msg.payload.message, /Read 96 wells at 600 nm/);
    assert.equal(msg.payload.output, 'read plate P-001');
    assert.equal(msg.values, undefined, 'values are consumed');
    assert.equal(msg.genie.instrument, GENIE_SEED.reader);
    assert.ok(statuses(h.getNode('cmd')).some((t) => /Read Plate: running/.test(t)));
    assert.equal(statuses(h.getNode('cmd')).at(-1), 'success');
  });

  test('failure: the error on output 2, nothing for the Catch node', async () => {
    const h = await load();
    const failed = nextMessage(h.getNode('failed'));
    let caught = false;
    h.getNode('caught').on('input', () => (caught = true));
    h.getNode('cmd').receive({ values: { 'Plate ID': 'FAIL-7', Wavelength: 450 } });
    const msg = await failed;
    assert.equal(msg.payload.status, 'failure');
    assert.match(msg.payload.error, /Plate not detected/);
    await delay(50);
    assert.equal(caught, false);
    assert.equal(h.getNode('cmd').status.lastCall.args[0].fill, 'red', 'a failed command ends red');
  });

  test('dialog values by id, overridden per parameter by msg.values by name; bare (unwrapped) bodies work', async () => {
    sim.genie.setEnvelope(false);
    const h = await load({ instrument: SHAKE.id, action: 'Shake', params: { [SHAKE.time]: '2s', [SHAKE.rpm]: '300', [SHAKE.mode]: 'linear' } });
    const ok = nextMessage(h.getNode('ok'));
    h.getNode('cmd').receive({ values: { RPM: 1200 } });
    const msg = await ok;
    assert.deepEqual(msg.payload.results, { durationSeconds: 2, rpm: 1200, mode: 'linear' });
    const sent = sim.genie.getCommand(msg.genie.commandId)!;
    assert.deepEqual(sent.values, [
      { parameterId: SHAKE.time, value: '2s' },
      { parameterId: SHAKE.rpm, value: 1200 },
      { parameterId: SHAKE.mode, value: 'linear' },
    ]);
  });

  test('instrument and action from msg when the dialog leaves them empty', async () => {
    const h = await load({ instrument: '', action: '' });
    const ok = nextMessage(h.getNode('ok'));
    h.getNode('cmd').receive({ instrument: GENIE_SEED.incubator, action: 'Set Temperature', values: { Temperature: 37 } });
    const msg = await ok;
    assert.equal(msg.payload.results.setPoint, 37);
  });

  const badCases: Array<[string, CmdOptions, Record<string, unknown>, RegExp]> = [
    ['number below min', { instrument: SHAKE.id, action: 'Shake' }, { Time: '5s', RPM: 50, Mode: 'orbital' }, /"RPM" must be ≥ 100 \(rule: min\)/],
    ['number above max', { instrument: SHAKE.id, action: 'Shake' }, { Time: '5s', RPM: 5000, Mode: 'orbital' }, /"RPM" must be ≤ 3000 \(rule: max\)/],
    ['number of wrong type', { instrument: SHAKE.id, action: 'Shake' }, { Time: '5s', RPM: 'fast', Mode: 'orbital' }, /"RPM" must be a number \(rule: type number\)/],
    ['option not allowed', { instrument: SHAKE.id, action: 'Shake' }, { Time: '5s', RPM: 500, Mode: 'wobble' }, /"Mode" must be one of .* \(rule: options\)/],
    ['time above max', { instrument: SHAKE.id, action: 'Shake' }, { Time: '3h', RPM: 500, Mode: 'orbital' }, /"Time" must be ≤ 7200 s .* \(rule: max\)/],
    ['time unreadable', { instrument: SHAKE.id, action: 'Shake' }, { Time: 'a while', RPM: 500, Mode: 'orbital' }, /"Time" must be a time .* \(rule: type time\)/],
    ['string too long', {}, { 'Plate ID': 'x'.repeat(33), Wavelength: 600 }, /"Plate ID" must be at most 32 characters long \(rule: max length\)/],
    ['number option not allowed', {}, { 'Plate ID': 'P1', Wavelength: 500 }, /"Wavelength" must be one of 405, 450, 562, 600, 660 \(rule: options\)/],
    ['required parameter missing', {}, { 'Plate ID': 'P1' }, /"Wavelength" is missing \(rule: required\)/],
    ['unknown parameter', {}, { 'Plate ID': 'P1', Wavelength: 600, Gain: 3 }, /unknown parameter "Gain"/],
    ['volume above max', { instrument: GENIE_SEED.labmate, action: 'Dispense' }, { Volume: '2 mL', Well: 'A1' }, /"Volume" must be ≤ 1000 µL .* \(rule: max\)/],
    ['string too short', { instrument: GENIE_SEED.labmate, action: 'Dispense' }, { Volume: 10, Well: 'A' }, /"Well" must be at least 2 characters long \(rule: min length\)/],
    ['json text invalid', { instrument: GENIE_SEED.labmate, action: 'Run Method' }, { Settings: '{not json' }, /"Settings" is not valid JSON text \(rule: type json\)/],
    ['file of wrong type', { instrument: GENIE_SEED.labmate, action: 'Execute Commands' }, { Commands: 42 }, /"Commands" must be of type .* \(rule: type file\)/],
  ];
  for (const [name, o, values, pattern] of badCases) {
    test(`rejected before sending: ${name} (Catch gets the msg; no command created)`, async () => {
      const h = await load(o);
      const before = sim.genie.counters.commandsCreated;
      sim.genie.clearRequestLog();
      const caught = nextMessage(h.getNode('caught'));
      h.getNode('cmd').receive({ topic: 'original', values });
      const msg = await caught;
      assert.equal(msg.topic, 'original');
      assert.match(msg.error.message, pattern);
      assert.match(msg.error.message, /no command was sent/);
      assert.equal(sim.genie.counters.commandsCreated, before, 'no command was created');
      assert.equal(sim.genie.requestLog.filter((r) => r.method === 'POST').length, 0, 'nothing was POSTed');
      const last = h.getNode('cmd').status.args.at(-1)[0];
      assert.equal(last.fill, 'red');
      assert.equal(last.shape, 'ring');
    });
  }

  test('the action definition is fetched once per deploy', async () => {
    const h = await load();
    sim.genie.clearRequestLog();
    for (let i = 0; i < 3; i++) {
      const ok = nextMessage(h.getNode('ok'));
      h.getNode('cmd').receive({ values: { 'Plate ID': `P${i}`, Wavelength: 600 } });
      await ok;
    }
    const defs = sim.genie.requestLog.filter((r) => r.method === 'GET' && r.path.endsWith('/actions/Read%20Plate'));
    assert.equal(defs.length, 1);
  });

  test('timeout: the command is killed and the Catch node gets a clear error', async () => {
    const h = await load({ instrument: SHAKE.id, action: 'Shake', timeout: 0.4 });
    const caught = nextMessage(h.getNode('caught'));
    h.getNode('cmd').receive({ values: { Time: '1h', RPM: 500, Mode: 'orbital' } });
    const msg = await caught;
    assert.match(msg.error.message, /^LabError: Genie command [0-9a-f]+ \("Shake" on instrument [0-9a-f]{24}\) did not finish within 0.4 s; it was killed$/);
    assert.match(msg.error.message, /it was killed/);
    const cmd = sim.genie.getCommand(msg.genie.commandId)!;
    assert.equal(cmd.status, 'failure');
    assert.equal(cmd.killed, true);
  });

  test('cancel message: the running command is killed, its msg leaves on output 2', async () => {
    const h = await load({ instrument: SHAKE.id, action: 'Shake' });
    const failed = nextMessage(h.getNode('failed'));
    h.getNode('cmd').receive({ topic: 'shake', values: { Time: '1h', RPM: 500, Mode: 'orbital' } });
    await until(() => statuses(h.getNode('cmd')).some((t) => /Shake: running/.test(t)));
    h.getNode('cmd').receive({ cancel: true });
    const msg = await failed;
    assert.equal(msg.topic, 'shake');
    assert.equal(statuses(h.getNode('cmd')).at(-1), 'killed');
    assert.equal(msg.payload.killed, true);
    const cmd = sim.genie.getCommand(msg.genie.commandId)!;
    assert.equal(cmd.killed, true);
    assert.equal(cmd.status, 'failure');
  });

  test('flow stopped: running commands are killed (and left running when switched off)', async () => {
    sim.genie.clearCommands();
    let h = await load({ instrument: SHAKE.id, action: 'Shake' });
    h.getNode('cmd').receive({ values: { Time: '1h', RPM: 500, Mode: 'orbital' } });
    await until(() => statuses(h.getNode('cmd')).some((t) => /Shake: running/.test(t)));
    const [first] = sim.genie.listCommands();
    await unload();
    assert.equal(sim.genie.getCommand(first.id)!.killed, true);

    // Stopped while the command is still being sent: once created, it is killed too.
    sim.genie.clearCommands();
    h = await load({ instrument: SHAKE.id, action: 'Shake' });
    sim.genie.clearRequestLog();
    h.getNode('cmd').receive({ values: { Time: '1h', RPM: 500, Mode: 'orbital' } });
    await until(() => sim.genie.requestLog.some((r) => r.method === 'POST'));
    await unload();
    const posted = sim.genie.listCommands();
    assert.equal(posted.length, 1);
    assert.equal(posted[0].killed, true, 'the command created during the stop was killed');

    // The same, deterministic: the command is created at once but its answer is still on the way
    // when the flow stops (the tenant closes its connections in the same stop). The close waits for
    // the answer and kills the command.
    sim.genie.clearCommands();
    h = await load({ instrument: SHAKE.id, action: 'Shake' });
    sim.genie.setAnswerDelay({ method: 'POST', path: /\/commands$/, ms: 400 });
    try {
      h.getNode('cmd').receive({ values: { Time: '1h', RPM: 500, Mode: 'orbital' } });
      await until(() => sim.genie.listCommands().length === 1);
      await unload();
    } finally {
      sim.genie.setAnswerDelay(null);
    }
    const slow = sim.genie.listCommands();
    assert.equal(slow.length, 1);
    assert.equal(slow[0].killed, true, 'the command whose answer arrived during the stop was killed');

    sim.genie.clearCommands();
    h = await load({ instrument: SHAKE.id, action: 'Shake', killOnStop: false });
    h.getNode('cmd').receive({ values: { Time: '1h', RPM: 500, Mode: 'orbital' } });
    await until(() => statuses(h.getNode('cmd')).some((t) => /Shake: running/.test(t)));
    const [second] = sim.genie.listCommands();
    await unload();
    assert.equal(sim.genie.getCommand(second.id)!.status, 'running');
    sim.genie.clearCommands();
  });

  test('unknown instrument and unknown action: clear errors for the Catch node', async () => {
    let h = await load({ instrument: '0123456789abcdef01234567' });
    let caught = nextMessage(h.getNode('caught'));
    h.getNode('cmd').receive({ values: {} });
    let msg = await caught;
    assert.match(msg.error.message, /unknown instrument "0123456789abcdef01234567"/);
    await unload();
    h = await load({ action: 'Read Minds' });
    caught = nextMessage(h.getNode('caught'));
    h.getNode('cmd').receive({ values: {} });
    msg = await caught;
    assert.match(msg.error.message, /has no action "Read Minds" \(HTTP 404\); its actions are "Read Plate"/);
  });

  test('token rejected: HTTP 401 naming the config node, no token anywhere', async () => {
    const h = await load({}, FAKE_BAD_TOKEN);
    const caught = nextMessage(h.getNode('caught'));
    h.getNode('cmd').receive({ values: { 'Plate ID': 'P1', Wavelength: 600 } });
    const msg = await caught;
    assert.match(msg.error.message, /HTTP 401: Invalid API token — check the API token in the genie-tenant/);
    const everything = JSON.stringify({ msg, statuses: statuses(h.getNode('cmd')) });
    assert.doesNotMatch(everything, /FAKE_rejected/);
  });

  test('connection lost while polling: resets and outages do not end the wait', async () => {
    sim.genie.setCommandDurationMs(600);
    try {
      const h = await load();
      // 3 resets outlast the client's own 2 retries, so the poller itself sees the loss.
      sim.genie.injectFault({ kind: 'reset', times: 3, method: 'GET', path: /\/commands\// });
      sim.genie.injectFault({ kind: '500', times: 1, method: 'GET', path: /\/commands\// });
      const ok = nextMessage(h.getNode('ok'), 15_000);
      h.getNode('cmd').receive({ values: { 'Plate ID': 'P9', Wavelength: 600 } });
      const msg = await ok;
      assert.equal(msg.command.status, 'success');
      assert.ok(sim.genie.counters.faults.reset >= 3);
      assert.ok(statuses(h.getNode('cmd')).some((t) => /still polling|retrying/.test(t)), statuses(h.getNode('cmd')).join(' | '));
    } finally {
      sim.genie.setCommandDurationMs(80);
    }
  });

  test('${ENV} in the tenant URL', async () => {
    process.env.LABWIRE_TEST_GENIE_URL = sim.genie.apiBase;
    try {
      const h = await load({ url: '${LABWIRE_TEST_GENIE_URL}' });
      const ok = nextMessage(h.getNode('ok'));
      h.getNode('cmd').receive({ values: { 'Plate ID': 'ENV', Wavelength: 405 } });
      assert.equal((await ok).command.status, 'success');
    } finally {
      delete process.env.LABWIRE_TEST_GENIE_URL;
    }
  });

  describe('editor admin endpoints', () => {
    test('deployed tenant by id: instruments, actions, one action', async () => {
      await load();
      const inst = await helper.request().get('/labwire/genie/instruments?tenant=tenant').expect(200);
      assert.ok(inst.body.some((i: any) => i.uid === GENIE_SEED.shaker && i.name === 'Orbital Shaker 1'));
      const actions = await helper.request().get(`/labwire/genie/instruments/${GENIE_SEED.shaker}/actions?tenant=tenant`).expect(200);
      assert.deepEqual(actions.body.map((a: any) => a.action), ['Shake', 'Stop']);
      const one = await helper.request().get(`/labwire/genie/instruments/${GENIE_SEED.shaker}/actions/Shake?tenant=tenant`).expect(200);
      assert.deepEqual(one.body.parameters.map((p: any) => [p.name, p.type]), [
        ['Time', 'time'],
        ['RPM', 'number'],
        ['Mode', 'string'],
      ]);
    });

    test('undeployed tenant: URL in the query, token in a header; otherwise "deploy first"', async () => {
      await load();
      const res = await helper
        .request()
        .get(`/labwire/genie/instruments?tenant=new-one&url=${encodeURIComponent(sim.genie.apiBase)}`)
        .set('X-Genie-Token', DEFAULT_GENIE_TOKEN)
        .expect(200);
      assert.equal(res.body.length, 4);
      const missing = await helper.request().get('/labwire/genie/instruments?tenant=not-deployed').expect(400);
      assert.match(missing.body.error, /not deployed yet: deploy first/);
      const none = await helper.request().get('/labwire/genie/instruments').expect(400);
      assert.match(none.body.error, /select a genie tenant/);
    });

    test('errors: unknown action 404, rejected token 502 without the token', async () => {
      await load();
      const nf = await helper.request().get(`/labwire/genie/instruments/${GENIE_SEED.shaker}/actions/Nope?tenant=tenant`).expect(404);
      assert.match(nf.body.error, /has no action "Nope"/);
      const bad = await helper
        .request()
        .get(`/labwire/genie/instruments?url=${encodeURIComponent(sim.genie.apiBase)}`)
        .set('X-Genie-Token', FAKE_BAD_TOKEN)
        .expect(502);
      assert.match(bad.body.error, /HTTP 401/);
      assert.doesNotMatch(JSON.stringify(bad.body), /FAKE_rejected/);
    });
  });
});
