/**
 * Keys named __proto__, constructor or prototype in msg-supplied objects are refused as unknown
 * fields, naming the key (LabError BAD_INPUT common.reservedKey), whether the object came from JSON
 * (an own `__proto__` property) or from an object literal in a function node (a prototype set):
 * bioaf-upsert (msg.payload) and genie-command (msg.values), in a real Node-RED runtime against the
 * simulators. Each case: the Catch node's code and text, a red status, nothing sent, and the
 * runtime keeps working (the next good msg succeeds).
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startLabSimulator, LabSimulator, GENIE_SEED, DEFAULT_GENIE_TOKEN, DEFAULT_BIOAF_API_KEY } from '../simulator';
import { loadFlow, nextMessage, unload, delay } from './support/nodered';

const TYPES = ['catch', 'function', 'bioaf-host', 'bioaf-upsert', 'genie-tenant', 'genie-command'];
const TEXT = /^(LabError: )?unknown field "(__proto__|constructor|prototype)" in msg\.(payload|values)[^:]*: keys named __proto__, constructor, prototype are never accepted; nothing was sent$/;

describe('reserved keys (__proto__, constructor, prototype) in msg objects', () => {
  let sim: LabSimulator;
  before(async () => {
    sim = await startLabSimulator({ benchling: { rateLimit: false }, genie: { commandDurationMs: 30 } });
  });
  afterEach(() => unload());
  after(() => sim.close());

  async function load() {
    // `lit` builds msg.payload / msg.values with an object literal inside a function node.
    const lit =
      "if (msg.literal === 'bioaf') msg.payload = { name: 'Lit', __proto__: { description: 'inherited' } };" +
      "if (msg.literal === 'bioaf-nested') msg.payload = { name: 'Lit', variables_json: { __proto__: { a: 1 } } };" +
      "if (msg.literal === 'genie') msg.values = { 'Plate ID': 'P-1', __proto__: { Wavelength: 405 } };" +
      'return msg;';
    const h = await loadFlow(
      TYPES,
      [
        { id: 'tab', type: 'tab' },
        { id: 'host', type: 'bioaf-host', z: 'tab', url: sim.bioaf.url, timeout: 5 },
        { id: 'gt', type: 'genie-tenant', z: 'tab', url: sim.genie.apiBase, timeout: 5 },
        { id: 'fnB', type: 'function', z: 'tab', func: lit, outputs: 1, wires: [['up']] },
        { id: 'fnG', type: 'function', z: 'tab', func: lit, outputs: 1, wires: [['gc']] },
        { id: 'up', type: 'bioaf-upsert', z: 'tab', host: 'host', mode: 'upsert', resource: 'project', externalId: 'externalId', externalIdType: 'msg', wires: [['out']] },
        { id: 'gc', type: 'genie-command', z: 'tab', tenant: 'gt', instrument: GENIE_SEED.reader, instrumentType: 'str', action: 'Read Plate', actionType: 'str', params: {}, interval: 0.05, maxInterval: 0.2, timeout: 10, wires: [['out'], ['out']] },
        { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
        { id: 'out', type: 'helper', z: 'tab' },
        { id: 'caught', type: 'helper', z: 'tab' },
      ],
      { host: { apiKey: DEFAULT_BIOAF_API_KEY }, gt: { token: DEFAULT_GENIE_TOKEN } },
    );
    return h;
  }

  async function expectRefused(h: any, nodeId: string, entry: string, msg: Record<string, unknown>, key: string, where: RegExp) {
    const statuses: any[] = [];
    h.getNode(nodeId).on('call:status', (c: any) => statuses.push(c.args[0]));
    const caught = nextMessage(h.getNode('caught'));
    h.getNode(entry).receive(msg);
    const m = await caught;
    assert.equal(m.error.code, 'BAD_INPUT');
    assert.match(m.error.message, TEXT);
    assert.ok(m.error.message.includes(`"${key}"`), m.error.message);
    assert.match(m.error.message, where);
    await delay(20);
    const last = statuses[statuses.length - 1];
    assert.equal(last?.fill, 'red');
    assert.equal(last?.shape, 'ring');
  }

  test('bioaf-upsert: own __proto__ / constructor / prototype from JSON, and a literal prototype from a function node', async () => {
    const h = await load();
    const before = sim.bioaf.counters.requests;
    for (const [json, key, where] of [
      ['{"name":"J","__proto__":{"description":"x"}}', '__proto__', /in msg\.payload:/],
      ['{"name":"J","constructor":"x"}', 'constructor', /in msg\.payload:/],
      ['{"name":"J","prototype":1}', 'prototype', /in msg\.payload:/],
      ['{"name":"J","variables_json":{"__proto__":{"a":1}}}', '__proto__', /in msg\.payload\.variables_json:/],
      ['{"name":"J","custom_fields":{"constructor":"v"}}', 'constructor', /in msg\.payload\.custom_fields:/],
    ] as const) {
      const payload = JSON.parse(json);
      await expectRefused(h, 'up', 'up', { externalId: 'P-json', payload }, key, where);
    }
    await expectRefused(h, 'up', 'fnB', { externalId: 'P-lit', literal: 'bioaf' }, '__proto__', /in msg\.payload:/);
    await expectRefused(h, 'up', 'fnB', { externalId: 'P-lit', literal: 'bioaf-nested' }, '__proto__', /in msg\.payload\.variables_json:/);
    assert.equal(sim.bioaf.counters.requests, before, 'nothing was sent to bioAF');
    // The runtime kept running: a good record is created.
    const out = nextMessage(h.getNode('out'));
    h.getNode('up').receive({ externalId: 'P-good', payload: { name: 'Good' } });
    assert.equal((await out).bioaf.action, 'created');
  });

  test('genie-command: reserved keys in msg.values (JSON, list item, literal prototype) are refused, no command sent', async () => {
    const h = await load();
    for (const [values, key, where] of [
      [JSON.parse('{"Plate ID":"P-1","__proto__":{"Wavelength":405}}'), '__proto__', /in msg\.values:/],
      [JSON.parse('{"Plate ID":"P-1","Wavelength":405,"constructor":1}'), 'constructor', /in msg\.values:/],
      [[{ name: 'prototype', value: 1 }], 'prototype', /in msg\.values:/],
    ] as const) {
      await expectRefused(h, 'gc', 'gc', { values }, key, where);
    }
    await expectRefused(h, 'gc', 'fnG', { literal: 'genie' }, '__proto__', /in msg\.values:/);
    // The runtime kept running: a good command succeeds.
    const out = nextMessage(h.getNode('out'));
    h.getNode('gc').receive({ values: { 'Plate ID': 'P-ok', Wavelength: 405 } });
    assert.equal((await out).command.status, 'success');
  });
});
