/**
 * The Genie LabOS client and its parameter validation, against the lab simulator over real HTTP:
 * every rule, the envelope (wrapped and bare), unknown instrument / action, a rejected token,
 * commands that succeed, fail, are killed and deleted.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GenieSim, GENIE_SEED, DEFAULT_GENIE_TOKEN } from '../simulator/genie';
import { GenieClient, unwrap, commandOutcome } from '../nodes/clients/genie/client';
import { timeSeconds, validateValues, volumeMicroliters, mergeValues } from '../nodes/clients/genie/schema';
import type { GenieAction } from '../nodes/clients/genie/types';
import { LabError } from '../nodes/lib/http/errors';

const ACTION: GenieAction = {
  action: 'Test',
  parameters: [
    { id: 'p1', name: 'Speed', type: 'number', min: 100, max: 3000 },
    { id: 'p2', name: 'Label', type: 'string', min: 2, max: 5 },
    { id: 'p3', name: 'Mode', type: 'string', options: ['orbital', 'linear'] },
    { id: 'p4', name: 'Time', type: 'time', min: 1, max: 600 },
    { id: 'p5', name: 'Volume', type: 'volume', min: 1, max: 1000 },
    { id: 'p6', name: 'Protocol', type: 'file' },
    { id: 'p7', name: 'Settings', type: 'json' },
    { id: 'p8', name: 'Wavelength', type: 'number', options: [405, 600] },
  ],
};
const GOOD = { Speed: 800, Label: 'abc', Mode: 'linear', Time: '15s', Volume: '0.5 mL', Protocol: 'proto.json', Settings: { a: 1 }, Wavelength: 600 };

function rejects(values: Record<string, unknown>, pattern: RegExp): void {
  assert.throws(
    () => validateValues(ACTION, values),
    (err: unknown) => {
      assert.ok(err instanceof LabError);
      assert.equal(err.code, 'BAD_INPUT');
      assert.match(err.message, pattern);
      assert.match(err.message, /no command was sent/);
      return true;
    },
  );
}

describe('Genie parameter validation', () => {
  test('good values pass, keyed by id in the action order, sent as given', () => {
    const out = validateValues(ACTION, { ...GOOD, Speed: '800' });
    assert.deepEqual(out.map((v) => v.parameterId), ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8']);
    assert.equal(out[0].value, 800, 'number text becomes a number');
    assert.equal(out[3].value, '15s', 'a time is sent exactly as given');
    assert.equal(out[4].value, '0.5 mL');
  });

  test('values by parameter id and as a list work too', () => {
    const byId = validateValues(ACTION, { p1: 100, p2: 'ab', p3: 'orbital', p4: 1, p5: 1000, p6: { commands: [] }, p7: '[1,2]', p8: '405' });
    assert.equal(byId.length, 8);
    const list = validateValues(ACTION, Object.entries(GOOD).map(([name, value]) => ({ name, value })));
    assert.equal(list.length, 8);
  });

  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['number below min', { Speed: 99 }, /"Speed" must be ≥ 100 \(rule: min\)/],
    ['number above max', { Speed: 3001 }, /"Speed" must be ≤ 3000 \(rule: max\)/],
    ['number of wrong type', { Speed: 'fast' }, /"Speed" must be a number \(rule: type number\)/],
    ['string too short', { Label: 'a' }, /"Label" must be at least 2 characters long \(rule: min length\)/],
    ['string too long', { Label: 'abcdef' }, /"Label" must be at most 5 characters long \(rule: max length\)/],
    ['string of wrong type', { Label: 42 }, /"Label" must be text \(rule: type string\)/],
    ['string not in options', { Mode: 'wobble' }, /"Mode" must be one of "orbital", "linear" \(rule: options\)/],
    ['number not in options', { Wavelength: 500 }, /"Wavelength" must be one of 405, 600 \(rule: options\)/],
    ['time unreadable', { Time: 'soon' }, /"Time" must be a time .* \(rule: type time\)/],
    ['time above max', { Time: '11 min' }, /"Time" must be ≤ 600 s .* \(rule: max\)/],
    ['time below min', { Time: '500ms' }, /"Time" must be ≥ 1 s .* \(rule: min\)/],
    ['volume unreadable', { Volume: 'lots' }, /"Volume" must be a volume .* \(rule: type volume\)/],
    ['volume above max', { Volume: '2 mL' }, /"Volume" must be ≤ 1000 µL .* \(rule: max\)/],
    ['file empty object type', { Protocol: 12 }, /"Protocol" must be of type string or object or array \(rule: type file\)/],
    ['json text invalid', { Settings: '{oops' }, /"Settings" is not valid JSON text \(rule: type json\)/],
    ['unknown parameter', { Colour: 'red' }, /unknown parameter "Colour" \(this action has: Speed, Label/],
  ];
  for (const [name, bad, pattern] of cases) {
    test(`rejects: ${name}`, () => rejects({ ...GOOD, ...bad }, pattern));
  }

  test('a missing parameter is named (rule: required); every problem is listed at once', () => {
    const { Speed: _s, Label: _l, ...rest } = GOOD;
    rejects({ ...rest, Mode: 'x' }, /"Speed" is missing \(rule: required\).*"Label" is missing.*"Mode" must be one of/);
  });

  test('a parameter marked optional may be left out (undocumented attribute honoured)', () => {
    const a: GenieAction = { action: 'Opt', parameters: [{ id: 'x', name: 'X', type: 'number', required: false }] };
    assert.deepEqual(validateValues(a, {}), []);
  });

  test('time and volume readers', () => {
    assert.equal(timeSeconds('15s'), 15);
    assert.equal(timeSeconds('1h30m'), 5400);
    assert.equal(timeSeconds('00:01:30'), 90);
    assert.equal(timeSeconds('2 min'), 120);
    assert.ok(Number.isNaN(timeSeconds('15 parsecs')));
    assert.equal(volumeMicroliters('0.5 mL'), 500);
    assert.equal(volumeMicroliters('500'), 500);
    assert.equal(volumeMicroliters(250), 250);
    assert.ok(Number.isNaN(volumeMicroliters('5 gallons')));
  });

  test('dialog values overlaid by msg values (by name or id), json text parsed', () => {
    const merged = mergeValues(ACTION, { p1: '500', p7: '{"a":2}', p2: '' }, { Speed: 900 });
    assert.deepEqual(merged, { p1: 900, p7: { a: 2 } });
  });

  test('envelope: wrapped and bare bodies; statuses', () => {
    assert.deepEqual(unwrap({ data: [1] }), [1]);
    assert.deepEqual(unwrap({ id: 'c1', status: 'running', data: 'x' }), { id: 'c1', status: 'running', data: 'x' });
    assert.equal(commandOutcome('success'), 'success');
    assert.equal(commandOutcome('failure'), 'failure');
    assert.equal(commandOutcome('running'), 'running');
    assert.equal(commandOutcome('killed'), 'failure');
  });
});

describe('Genie client against the simulator', () => {
  let sim: GenieSim;
  let client: GenieClient;
  before(async () => {
    sim = await new GenieSim({ commandDurationMs: 50, timeScaleMs: 5 }).start();
    client = new GenieClient({ url: sim.apiBase, token: DEFAULT_GENIE_TOKEN, backoff: { baseMs: 20, maxMs: 50 } });
  });
  afterEach(() => {
    sim.clearFaults();
    sim.setEnvelope(true);
  });
  after(async () => {
    client.close();
    await sim.close();
  });

  test('instruments and actions, wrapped in data and bare', async () => {
    const list = await client.listInstruments();
    assert.ok(list.some((i) => i.uid === GENIE_SEED.reader && i.name === 'Plate Reader'));
    sim.setEnvelope(false);
    const actions = await client.listActions(GENIE_SEED.shaker);
    assert.deepEqual(actions.map((a) => a.action), ['Shake', 'Stop']);
    const shake = await client.getAction(GENIE_SEED.shaker, 'Shake');
    assert.deepEqual(shake.parameters.map((p) => p.name), ['Time', 'RPM', 'Mode']);
  });

  test('unknown instrument and unknown action are told apart', async () => {
    await assert.rejects(client.getAction('000000000000000000000000', 'Shake'), /unknown instrument "000000000000000000000000"/);
    await assert.rejects(client.getAction(GENIE_SEED.shaker, 'Dance'), /has no action "Dance".*"Shake", "Stop"/);
  });

  test('a rejected token: HTTP 401 naming the config node, token never in the message', async () => {
    const bad = new GenieClient({ url: sim.apiBase, token: 'genie_FAKE_wrong_token_for_tests' });
    try {
      await assert.rejects(bad.listInstruments(), (err: LabError) => {
        assert.equal(err.status, 401);
        assert.match(err.message, /Invalid API token — check the API token in the genie-tenant/);
        assert.doesNotMatch(err.message, /FAKE_wrong/);
        return true;
      });
    } finally {
      bad.close();
    }
  });

  test('a command runs to success with results; another to failure with its error', async () => {
    const read = await client.getAction(GENIE_SEED.reader, 'Read Plate');
    const c = await client.runCommand(GENIE_SEED.reader, read, { 'Plate ID': 'P1', Wavelength: 600 });
    assert.equal(c.status, 'running');
    const done = await client.waitForCommand(GENIE_SEED.reader, c.id, { intervalMs: 20, timeoutMs: 5000 });
    assert.equal(done.status, 'success');
    assert.equal(Object.keys((done.results as { wells: object }).wells).length, 96);
    const f = await client.runCommand(GENIE_SEED.reader, read, { 'Plate ID': 'FAIL-1', Wavelength: 600 });
    const failed = await client.waitForCommand(GENIE_SEED.reader, f.id, { intervalMs: 20, timeoutMs: 5000 });
    assert.equal(failed.status, 'failure');
    assert.match(String(failed.error), /Plate not detected/);
  });

  test('kill ends a running command; delete is idempotent', async () => {
    const shake = await client.getAction(GENIE_SEED.shaker, 'Shake');
    const c = await client.runCommand(GENIE_SEED.shaker, shake, { Time: '1h', RPM: 500, Mode: 'orbital' });
    await client.killCommand(GENIE_SEED.shaker, c.id);
    await client.killCommand(GENIE_SEED.shaker, c.id); // twice is harmless
    const after = await client.getCommand(GENIE_SEED.shaker, c.id);
    assert.equal(after.status, 'failure');
    assert.equal(sim.getCommand(c.id)?.killed, true);
    await client.deleteCommand(GENIE_SEED.shaker, c.id);
    await client.deleteCommand(GENIE_SEED.shaker, c.id);
    await assert.rejects(client.getCommand(GENIE_SEED.shaker, c.id), /HTTP 404/);
  });

  test('simulator: discovery, idempotent instrument delete, bearer check', async () => {
    const disc = await client.http.request<{ data: Array<{ method: string; path: string }> }>({ method: 'GET', path: '/discover' });
    assert.ok(disc.data.data.some((d) => d.method === 'POST' && d.path === '/public/v1/instruments/:id/commands'));
    const extra = { uid: 'aaaaaaaaaaaaaaaaaaaaaaaa', name: 'Spare', type: 'shaker', model: 'x', status: 'online' as const, actions: [] };
    sim.addInstrument(extra);
    for (let i = 0; i < 2; i++) {
      const res = await client.http.request({ method: 'DELETE', path: `/instruments/${extra.uid}` });
      assert.equal(res.status, 200, 'success whether or not it existed');
    }
    assert.ok(!sim.listInstruments().some((x) => x.uid === extra.uid));
    const res = await fetch(`${sim.apiBase}/instruments`, { headers: { Authorization: 'Basic abc' } });
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), { error: 'Missing Bearer token' });
  });

  test('the simulator checks values itself (a client that skips validation gets 400)', async () => {
    const before = sim.counters.commandsCreated;
    await assert.rejects(client.createCommand(GENIE_SEED.shaker, 'Shake', [{ parameterId: 'RPM', value: 99999 }]), /HTTP 400/);
    assert.equal(sim.counters.commandsCreated, before);
  });

  test('a status poll survives resets and 503s (shared poller)', async () => {
    const set = await client.getAction(GENIE_SEED.incubator, 'Set Temperature');
    const c = await client.runCommand(GENIE_SEED.incubator, set, { Temperature: 37 });
    sim.injectFault({ kind: 'reset', times: 4, method: 'GET', path: /\/commands\// });
    sim.injectFault({ kind: '500', times: 3, method: 'GET', path: /\/commands\// });
    const errors: string[] = [];
    const done = await client.waitForCommand(GENIE_SEED.incubator, c.id, { intervalMs: 20, timeoutMs: 10_000, onPoll: (i) => i.error && errors.push(i.error.code) });
    assert.equal(done.status, 'success');
    assert.ok(errors.length >= 1, 'the poller saw a transient error and kept going');
  });
});
