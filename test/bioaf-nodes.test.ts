/**
 * The bioaf-upsert node inside a real Node-RED runtime, talking HTTP to the bioAF simulator:
 * upsert (created / updated / unchanged), lookup, list with cursor paging, and bad input or a
 * rejected key as Catch-able errors carrying the original msg, with a red status and no secret.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BioafSim, DEFAULT_BIOAF_API_KEY } from '../simulator/bioaf';
import { loadFlow, nextMessage, unload } from './support/nodered';

const TYPES = ['catch', 'bioaf-host', 'bioaf-upsert'];
const FAKE_BAD_KEY = 'biokey_FAKEwrongKEY.fakefakefakefakefakefakefakefake';

interface FlowOptions {
  url: string;
  mode?: string;
  resource?: string;
  externalId?: string;
  externalIdType?: string;
  pageSize?: number;
  allPages?: boolean;
}

function flow(o: FlowOptions) {
  return [
    { id: 'tab', type: 'tab', label: 'bioaf' },
    { id: 'host', type: 'bioaf-host', z: 'tab', url: o.url, timeout: 5 },
    {
      id: 'upserter',
      type: 'bioaf-upsert',
      z: 'tab',
      host: 'host',
      mode: o.mode ?? 'upsert',
      resource: o.resource ?? 'project',
      externalId: o.externalId ?? 'externalId',
      externalIdType: o.externalIdType ?? 'msg',
      pageSize: o.pageSize ?? 50,
      allPages: o.allPages ?? false,
      wires: [['out']],
    },
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'out', type: 'helper', z: 'tab' },
    { id: 'caught', type: 'helper', z: 'tab' },
  ];
}

describe('bioaf-upsert in Node-RED', () => {
  let sim: BioafSim;

  before(async () => {
    sim = await new BioafSim().start();
  });
  afterEach(async () => {
    sim.clearFaults();
    await unload();
  });
  after(async () => {
    await sim.close();
  });

  const load = (o: Partial<FlowOptions> = {}, key = DEFAULT_BIOAF_API_KEY) => loadFlow(TYPES, flow({ url: sim.url, ...o }), { host: { apiKey: key } });
  const run = async (h: any, msg: Record<string, unknown>) => {
    const out = nextMessage(h.getNode('out'));
    h.getNode('upserter').receive(msg);
    return out;
  };
  const statusTexts = (h: any) => h.getNode('upserter').status.args.map((a: any[]) => a[0].text as string);

  test('created, then unchanged without a write, then updated; the msg travels on', async () => {
    const h = await load();
    const m1 = await run(h, { externalId: 'N-P-1', payload: { name: 'Atlas', hypothesis: 'h1' }, topic: 'keep' });
    assert.equal(m1.topic, 'keep');
    assert.equal(m1.bioaf.action, 'created');
    assert.equal(m1.payload.external_id, 'N-P-1');
    assert.equal(typeof m1.payload.id, 'number');
    assert.ok(statusTexts(h).includes(`created #${m1.payload.id}`), statusTexts(h).join(','));
    sim.clearRequestLog();
    const m2 = await run(h, { externalId: 'N-P-1', payload: { name: 'Atlas', hypothesis: 'h1' } });
    assert.equal(m2.bioaf.action, 'unchanged');
    assert.deepEqual(sim.requestLog.map((e) => e.method), ['GET']);
    const m3 = await run(h, { externalId: 'N-P-1', payload: { hypothesis: 'h2' } });
    assert.equal(m3.bioaf.action, 'updated');
    assert.deepEqual(m3.bioaf.changed, ['hypothesis']);
    assert.equal(m3.payload.hypothesis, 'h2');
    assert.equal(m3.payload.name, 'Atlas', 'the record as bioAF holds it');
  });

  test('a create whose answer is lost (connection reset after commit) is retried with the same key: one record', async () => {
    const h = await load();
    sim.injectFault({ kind: 'reset', method: 'POST', path: /\/projects$/, afterCommit: true });
    sim.clearRequestLog();
    const m = await run(h, { externalId: 'N-P-reset', payload: { name: 'exactly once' } });
    assert.equal(m.bioaf.action, 'created');
    assert.equal(m.bioaf.replayed, true);
    const posts = sim.requestLog.filter((e) => e.method === 'POST');
    assert.equal(posts.length, 2);
    assert.equal(posts[0].idempotencyKey, posts[1].idempotencyKey);
    assert.equal(sim.records('project').filter((p) => p.external_id === 'N-P-reset').length, 1);
  });

  test('samples: upsert within an experiment given by its LIMS id, and lookup', async () => {
    let h = await load({ resource: 'experiment' });
    const e = await run(h, { externalId: 'N-E-1', payload: { name: 'exp' } });
    await unload();
    h = await load({ resource: 'sample', externalId: 'sampleId', externalIdType: 'msg' });
    const s = await run(h, { sampleId: 'N-S-1', payload: { experiment_external_id: 'N-E-1', organism: 'mouse', custom_fields: [{ field_name: 'well', field_value: 'A1' }] } });
    assert.equal(s.bioaf.action, 'created');
    assert.equal(s.payload.experiment_id, e.payload.id);
    await unload();
    h = await load({ resource: 'sample', mode: 'lookup', externalId: 'N-S-1', externalIdType: 'str' });
    const found = await run(h, { payload: { experiment_id: e.payload.id } });
    assert.equal(found.bioaf.action, 'found');
    assert.equal(found.payload.id, s.payload.id);
    const missing = await run(h, { payload: { experiment_id: e.payload.id + 1000 } });
    assert.equal(missing.bioaf.action, 'not_found');
    assert.equal(missing.payload, null);
  });

  test('list: one page per message with msg.cursor, or every page', async () => {
    let h = await load({ resource: 'project' });
    const p = await run(h, { externalId: 'N-P-list', payload: { name: 'lister' } });
    await unload();
    h = await load({ resource: 'experiment' });
    for (let i = 0; i < 5; i++) await run(h, { externalId: `N-L-${i}`, payload: { name: `L${i}`, project_id: p.payload.id } });
    await unload();
    h = await load({ resource: 'experiment', mode: 'list', pageSize: 2 });
    const page1 = await run(h, { payload: { project_external_id: 'N-P-list' } });
    assert.deepEqual(page1.payload.map((x: any) => x.external_id), ['N-L-4', 'N-L-3']);
    assert.ok(page1.nextCursor);
    const page2 = await run(h, { payload: { project_external_id: 'N-P-list' }, cursor: page1.nextCursor });
    assert.deepEqual(page2.payload.map((x: any) => x.external_id), ['N-L-2', 'N-L-1']);
    const page3 = await run(h, { payload: { project_external_id: 'N-P-list' }, cursor: page2.nextCursor });
    assert.deepEqual(page3.payload.map((x: any) => x.external_id), ['N-L-0']);
    assert.equal(page3.nextCursor, null);
    await unload();
    h = await load({ resource: 'experiment', mode: 'list', pageSize: 2, allPages: true });
    const all = await run(h, { payload: { project_id: p.payload.id } });
    assert.equal(all.payload.length, 5);
    assert.equal(all.bioaf.pages, 3);
  });

  async function expectCaught(h: any, msg: Record<string, unknown>, pattern: RegExp) {
    const caught = nextMessage(h.getNode('caught'));
    h.getNode('upserter').receive(msg);
    const c = await caught;
    assert.match(c.error.message, pattern);
    assert.equal(c.tag, msg.tag, 'Catch gets the original msg');
    const last = h.getNode('upserter').status.lastCall.args[0];
    assert.equal(last.fill, 'red');
    assert.equal(last.shape, 'ring');
    return c;
  }

  test('fields bioAF will not accept are Catch-able errors naming the field, before any request', async () => {
    const h = await load({ resource: 'experiment' });
    sim.clearRequestLog();
    await expectCaught(h, { tag: 1, externalId: 'N-E-bad', payload: { name: 'x', status: 'complete' } }, /experiment field "status" cannot be written/);
    await expectCaught(h, { tag: 2, externalId: 'N-E-bad', payload: { name: 'x', external_id: 'other' } }, /"external_id" is immutable/);
    await expectCaught(h, { tag: 3, payload: { name: 'x' } }, /"External id" is missing \(msg\.externalId is empty\)/);
    await expectCaught(h, { tag: 4, externalId: 'N-E-bad', payload: 'just text' }, /msg\.payload must be an object/);
    assert.equal(sim.requestLog.length, 0);
  });

  test('a rejected key: clear error, red status, and the key nowhere', async () => {
    const h = await load({}, FAKE_BAD_KEY);
    const c = await expectCaught(h, { tag: 'k', externalId: 'N-P-k', payload: { name: 'x' } }, /HTTP 401: Invalid API key.*check the API key/);
    const everything = JSON.stringify(c) + JSON.stringify(h.getNode('upserter').status.args);
    assert.doesNotMatch(everything, /fakefakefake/);
    assert.doesNotMatch(everything, /biokey_FAKE/);
  });

  test('${ENV} works in the bioAF URL', async () => {
    process.env.LABWIRE_TEST_BIOAF_URL = sim.url;
    try {
      const h = await loadFlow(TYPES, flow({ url: '${LABWIRE_TEST_BIOAF_URL}' }), { host: { apiKey: DEFAULT_BIOAF_API_KEY } });
      const m = await run(h, { externalId: 'N-P-env', payload: { name: 'env' } });
      assert.equal(m.bioaf.action, 'created');
    } finally {
      delete process.env.LABWIRE_TEST_BIOAF_URL;
    }
  });
});
