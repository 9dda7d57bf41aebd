/**
 * What a newcomer meets in the examples:
 *  - each example's comment names every environment variable the flow reads;
 *  - every example with a watch folder says what importing it again does;
 *  - example 07 logs its outcomes without LAB_OUTCOME_LOG: to lab-outcomes.jsonl in the user
 *    directory (a real Node-RED against the simulator);
 *  - a node's journal in labwire-state/ stays over a redeploy and while the node is disabled, and
 *    is removed when the node is deleted from the flows.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, LabSimulator, DEFAULT_API_KEY } from '../simulator';
import { freePort, startNodeRed, NodeRedProcess, PROJECT_ROOT } from '../scripts/node-red-process';
import { tempDir, delay } from './support/nodered';
import { BASE_OVERRIDES, exampleFlow } from '../scripts/chaos-lib';
import { resultsLoopEnv } from '../scripts/example-env';

const EXAMPLES_DIR = path.join(PROJECT_ROOT, 'examples');
const EXAMPLE_07 = '07 - Process a folder of files into a run and log the outcome';

type FlowNode = Record<string, unknown> & { id: string; type: string };

function envVarsOf(flow: FlowNode[]): Set<string> {
  const vars = new Set<string>();
  for (const n of flow) {
    for (const [k, v] of Object.entries(n)) {
      if (typeof v === 'string') {
        for (const m of v.matchAll(/\$\{(\w+)\}/g)) vars.add(m[1]);
        for (const m of v.matchAll(/\$env\(['"](\w+)['"]\)/g)) vars.add(m[1]);
      }
      if (k.endsWith('Type') && v === 'env' && typeof n[k.slice(0, -4)] === 'string') vars.add(n[k.slice(0, -4)] as string);
    }
    for (const p of (n.props as Array<{ v?: string; vt?: string }> | undefined) ?? []) if (p.vt === 'env' && p.v) vars.add(p.v);
    for (const r of (n.rules as Array<{ to?: string; tot?: string }> | undefined) ?? []) if (r.tot === 'env' && r.to) vars.add(r.to);
  }
  vars.delete('LABWIRE_USER_DIR'); // set by the pack itself
  return vars;
}

const examples = fs
  .readdirSync(EXAMPLES_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ name: f.replace(/\.json$/, ''), flow: JSON.parse(fs.readFileSync(path.join(EXAMPLES_DIR, f), 'utf8')) as FlowNode[] }));

describe('example comments', () => {
  for (const { name, flow } of examples) {
    test(`${name}: the comment names every environment variable the flow reads`, () => {
      const comment = flow.filter((n) => n.type === 'comment').map((n) => `${n.name ?? ''} ${n.info ?? ''}`).join('\n');
      const missing = [...envVarsOf(flow)].filter((v) => !comment.includes(v)).sort();
      assert.deepEqual(missing, [], `${name}: not named in its comment`);
      if (flow.some((n) => n.type === 'lab-watch-folder')) {
        assert.match(comment, /Importing this example again/, `${name}: what a re-import does`);
      }
    });
  }
});

describe('example 07 without LAB_OUTCOME_LOG, and the journals of deleted nodes', { timeout: 5 * 60_000 }, () => {
  let sim: LabSimulator;
  let red: NodeRedProcess;
  const root = tempDir('examples');
  const userDir = path.join(root, 'node-red');
  const instrument = path.join(root, 'instrument');
  const archive = path.join(root, 'archive');
  const state = path.join(userDir, 'labwire-state');
  const flow = exampleFlow(BASE_OVERRIDES, DEFAULT_API_KEY, EXAMPLE_07) as FlowNode[];
  const idOf = (type: string) => flow.find((n) => n.type === type)!.id;
  const journals = () => (fs.existsSync(state) ? fs.readdirSync(state).filter((f) => f.endsWith('.jsonl')).sort() : []);
  const ofNodes = (ids: string[]) => journals().filter((f) => ids.some((id) => f.endsWith(`-${id}.jsonl`)));

  async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await delay(100);
    }
  }

  before(async () => {
    fs.mkdirSync(instrument, { recursive: true });
    sim = await startLabSimulator({ benchling: { rateLimit: false, taskDurationMs: 200 } });
    red = await startNodeRed({
      userDir,
      port: await freePort(),
      env: {
        ...resultsLoopEnv(sim.benchling.url, { instrument: instrument, archive: archive }),
        LAB_OUTCOME_LOG: '', // unset, as on a PC that never heard of it
      },
    });
  });
  after(async () => {
    await red?.stop();
    await sim?.close();
  });

  test('07 logs to lab-outcomes.jsonl in the user directory when LAB_OUTCOME_LOG is not set', async () => {
    await red.deploy(flow);
    fs.writeFileSync(path.join(instrument, 'plate-07.csv'), 'well,od\nA1,0.1\n');
    const log = path.join(userDir, 'lab-outcomes.jsonl');
    await until('the outcome line', () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('plate-07.csv'));
    const line = JSON.parse(fs.readFileSync(log, 'utf8').trim().split('\n').pop()!);
    assert.equal(line.file, 'plate-07.csv');
    assert.equal(line.status, 'SUCCEEDED');
  });

  test('a redeploy and a disabled node keep the journals; deleting the nodes removes theirs, and only theirs', async () => {
    const ids = [idOf('lab-watch-folder'), idOf('benchling-upload-blob'), idOf('benchling-create-processor')];
    await until('the journals of watcher, upload and processor', () => ofNodes(ids).length === 3);
    const others = () => journals().filter((f) => !ofNodes(ids).includes(f));
    const before = others();
    const history = path.join(state, 'history', `watch-folder-${ids[0]}`);
    await until('the watcher\'s history of the finished file', () => fs.existsSync(history));

    await red.deploy(flow); // a full redeploy: every node stopped and started again
    await delay(1000);
    assert.equal(ofNodes(ids).length, 3, `after a redeploy: ${journals().join(', ')}`);

    await red.deploy(flow.map((n) => (n.type === 'lab-watch-folder' ? { ...n, d: true } : n)));
    await delay(1000);
    assert.equal(ofNodes(ids).length, 3, `with the watcher disabled: ${journals().join(', ')}`);

    await red.deploy(flow.filter((n) => !ids.includes(n.id)).map((n) => ({ ...n, wires: ((n.wires as string[][] | undefined) ?? []).map((w) => w.filter((t) => !ids.includes(t))) })));
    await until('the deleted nodes\' journals removed', () => ofNodes(ids).length === 0, 15_000);
    assert.equal(fs.existsSync(history), false, 'the deleted watcher\'s history');
    assert.deepEqual(others(), before, 'state files of other nodes and of the tenant are kept');
  });
});
