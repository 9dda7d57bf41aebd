/**
 * Examples 40 (upsert LIMS records) and 41 (receive and verify webhooks) loaded as shipped into a
 * real Node-RED runtime and run against the bioAF simulator; the debug nodes become test helpers.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { BioafSim, DEFAULT_BIOAF_API_KEY } from '../simulator/bioaf';
import { helper, nextMessage, tempDir, unload } from './support/nodered';

const EXAMPLES = path.resolve(__dirname, '..', '..', 'examples');
const SECRET = 'whsec_example-test-secret-not-real-000000000000';

let nodeApp: ((req: unknown, res: unknown, next: () => void) => void) | undefined;
function captureHttpNode(RED: { httpNode: typeof nodeApp }) {
  nodeApp = RED.httpNode;
}

function modules(): unknown[] {
  const core = (p: string) => require(`@node-red/nodes/core/${p}`);
  const pack = (t: string) => require(path.resolve(__dirname, '..', 'nodes', `${t}.js`));
  return [
    captureHttpNode,
    core('common/20-inject.js'),
    core('common/25-catch.js'),
    core('common/90-comment.js'),
    core('function/10-switch.js'),
    core('network/21-httpin.js'),
    pack('bioaf-host'),
    pack('bioaf-upsert'),
    pack('bioaf-webhook-verify'),
  ];
}

describe('bioAF examples 40 and 41', () => {
  let sim: BioafSim;
  before(async () => {
    sim = await new BioafSim().start();
    await helper.startServer();
    (helper as any)._app.use((req: unknown, res: unknown, next: () => void) => (nodeApp ? nodeApp(req, res, next) : next()));
  });
  afterEach(async () => {
    delete process.env.BIOAF_URL;
    for (const s of sim.subscriptions()) s.active = false;
    await unload();
  });
  after(async () => {
    await helper.stopServer();
    await sim.close();
  });

  async function load(file: string) {
    process.env.BIOAF_URL = sim.url;
    const flow = JSON.parse(fs.readFileSync(path.join(EXAMPLES, file), 'utf8')) as Array<Record<string, unknown>>;
    for (const n of flow) if (n.type === 'debug') n.type = 'helper';
    const host = flow.find((n) => n.type === 'bioaf-host')!;
    assert.equal(host.credentials, undefined, 'no credentials in the example');
    helper.settings({ userDir: tempDir('bioaf-example') });
    await new Promise<void>((resolve) => helper.load(modules(), flow, { [String(host.id)]: { apiKey: DEFAULT_BIOAF_API_KEY, webhookSecrets: SECRET } }, resolve));
    return (name: string) => helper.getNode(String(flow.find((n) => n.name === name)!.id));
  }

  test('40: project, experiment, sample created in order; again → unchanged; lookup and list', async () => {
    const byName = await load('40 - Upsert LIMS records into bioAF.json');
    const click = async (inject: string) => {
      const out = nextMessage(byName('record'));
      byName(inject).receive({});
      return out;
    };
    assert.equal((await click('project LIMS-PRJ-7')).bioaf.action, 'created');
    const exp = await click('experiment LIMS-EXP-42');
    assert.equal(exp.bioaf.action, 'created');
    const s = await click('sample LIMS-S-0001');
    assert.equal(s.bioaf.action, 'created');
    assert.equal(s.payload.experiment_id, exp.payload.id);
    assert.equal((await click('sample LIMS-S-0001')).bioaf.action, 'unchanged');
    const found = await click('look up LIMS-S-0001');
    assert.equal(found.payload.id, s.payload.id);
    const page = nextMessage(byName('page'));
    byName('first page (msg.cursor for the next)').receive({});
    const p = await page;
    assert.deepEqual(p.payload.map((x: any) => x.external_id), ['LIMS-S-0001']);
  });

  test('41: a signed delivery is verified and routed by event; a bad one answered 401', async () => {
    const byName = await load('41 - Receive and verify bioAF webhooks.json');
    const url = helper.url() + '/bioaf/webhook';
    sim.addSubscription({ url, secret: SECRET });
    const got = nextMessage(byName('sample event'));
    const { deliveries } = sim.emitEvent('sample.updated', { sample_id: 1, external_id: 'S-1', changed_fields: ['organism'] });
    const msg = await got;
    assert.equal(msg.payload.data.external_id, 'S-1');
    assert.equal((await sim.waitForDelivery(deliveries[0])).attempts[0].status, 200);
    sim.addSubscription({ url, secret: 'whsec_not-the-configured-one-00000000000000000' });
    const rejected = nextMessage(byName('rejected'));
    const bad = sim.emitEvent('experiment.updated', { experiment_id: 1, external_id: 'E-1', changed_fields: ['name'] });
    const r = await rejected;
    assert.equal(r.statusCode, 401);
    const attempts = await Promise.all(bad.deliveries.map((id) => sim.waitForDelivery(id, (d) => d.attempts.length > 0)));
    assert.deepEqual(attempts.map((d) => d.attempts[0].status).sort(), [200, 401], 'the configured subscription passes, the other is refused');
  });
});
