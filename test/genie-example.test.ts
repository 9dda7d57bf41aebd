/**
 * Example 30 ("Shake the plate, then read it") loaded as shipped into a real Node-RED runtime and
 * run against the lab simulator: the shake, then the read with the plate id carried along; a
 * failing plate on the failure output; a bad value to the Catch node with no command sent.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, LabSimulator, DEFAULT_GENIE_TOKEN } from '../simulator';
import { helper, nextMessage, tempDir, unload } from './support/nodered';

const EXAMPLE = path.resolve(__dirname, '..', '..', 'examples', '30 - Shake the plate, then read it.json');

function modules(): unknown[] {
  const core = (p: string) => require(`@node-red/nodes/core/${p}`);
  const pack = (t: string) => require(path.resolve(__dirname, '..', 'nodes', `${t}.js`));
  return [core('common/20-inject.js'), core('common/25-catch.js'), core('common/90-comment.js'), core('function/15-change.js'), pack('genie-tenant'), pack('genie-command')];
}

describe('example 30: shake the plate, then read it', () => {
  let sim: LabSimulator;
  before(async () => {
    sim = await startLabSimulator({ benchling: { rateLimit: false }, genie: { commandDurationMs: 50, timeScaleMs: 5 } });
    await helper.startServer();
  });
  afterEach(async () => {
    delete process.env.GENIE_URL;
    await unload();
  });
  after(async () => {
    await helper.stopServer();
    await sim.close();
  });

  async function load() {
    process.env.GENIE_URL = sim.genie.apiBase;
    const flow = JSON.parse(fs.readFileSync(EXAMPLE, 'utf8')) as Array<Record<string, unknown>>;
    // The debug nodes become test helpers; everything else runs as shipped.
    for (const n of flow) if (n.type === 'debug') n.type = 'helper';
    // Faster polling for the test.
    for (const n of flow) if (n.type === 'genie-command') n.interval = 0.03;
    const tenant = flow.find((n) => n.type === 'genie-tenant')!;
    helper.settings({ userDir: tempDir('genie-example') });
    await new Promise<void>((resolve) => helper.load(modules(), flow, { [String(tenant.id)]: { token: DEFAULT_GENIE_TOKEN } }, resolve));
    const byName = (name: string) => helper.getNode(String(flow.find((n) => n.name === name)!.id));
    return { byName };
  }

  test('the shake runs, then the read, and the results arrive', async () => {
    const { byName } = await load();
    const before = sim.genie.counters.commandsCreated;
    const results = nextMessage(byName('plate results'));
    byName('plate P-001').receive({});
    const msg = await results;
    assert.equal(msg.payload.results.plateId, 'P-001');
    assert.equal(Object.keys(msg.payload.results.wells).length, 96);
    assert.equal(sim.genie.counters.commandsCreated - before, 2, 'one shake and one read');
    const [shake, read] = sim.genie.listCommands().slice(-2);
    assert.equal(shake.payload.action, 'Shake');
    assert.equal(read.payload.action, 'Read Plate');
  });

  test('a plate that fails to read leaves on the failure output', async () => {
    const { byName } = await load();
    const failed = nextMessage(byName('command failed'));
    byName('shake 15 s at 800 rpm').receive({ plateId: 'FAIL-42' });
    const msg = await failed;
    assert.match(msg.payload.error, /Plate not detected/);
  });

  test('a bad value goes to the Catch node and nothing is sent', async () => {
    const { byName } = await load();
    const before = sim.genie.counters.commandsCreated;
    const error = nextMessage(byName('error'));
    byName('shake 15 s at 800 rpm').receive({ values: { RPM: 9000 } });
    const msg = await error;
    assert.match(msg.error.message, /"RPM" must be ≤ 3000 \(rule: max\)/);
    assert.equal(sim.genie.counters.commandsCreated, before);
  });
});
