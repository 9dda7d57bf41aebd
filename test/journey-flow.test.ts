/**
 * The self-healing journey inside a real Node-RED, over real HTTP to the simulator: watch folder →
 * upload blob → back to the watcher as an ack; a Catch node sends failures back too. The watcher
 * — not the flow — decides: a transient write failure is sent again after the backoff and ends
 * done; a permanent one is dead-lettered with its reason and stays so until a `retry` message.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, LabSimulator, DEFAULT_API_KEY } from '../simulator';
import { helper, loadFlow, tempDir, unload, delay } from './support/nodered';

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(25);
  }
}

function flow(url: string, folder: string, archive: string) {
  return [
    { id: 'tab', type: 'tab', label: 'journey' },
    { id: 'tenant', type: 'benchling-tenant', z: 'tab', url, rateLimit: 600, timeout: 5 },
    {
      id: 'watch',
      type: 'lab-watch-folder',
      z: 'tab',
      folder,
      include: '*.csv',
      stability: 0.2,
      probeInterval: 0.1,
      rescanInterval: 0.5,
      postAction: 'move',
      archiveFolder: archive,
      retryBase: 0.2,
      retryMax: 0.5,
      wires: [['gate']],
    },
    // A flow step that refuses some files for good (a permanent failure the pack does not know).
    { id: 'gate', type: 'function', z: 'tab', func: 'if (/^reject/.test(msg.file.name)) throw new Error("not a plate file: " + msg.file.name); return msg;', wires: [['upload']] },
    { id: 'upload', type: 'benchling-upload-blob', z: 'tab', tenant: 'tenant', file: 'payload', fileType: 'msg', wires: [['watch', 'uploaded']] },
    { id: 'catcher', type: 'catch', z: 'tab', scope: ['gate', 'upload'], uncaught: false, wires: [['watch', 'caught']] },
    { id: 'uploaded', type: 'helper', z: 'tab' },
    { id: 'caught', type: 'helper', z: 'tab' },
  ];
}

describe('the file journey in Node-RED', () => {
  let sim: LabSimulator;
  before(async () => {
    sim = await startLabSimulator({ benchling: { rateLimit: false } });
    await helper.startServer();
  });
  afterEach(() => unload());
  after(async () => {
    await helper.stopServer();
    await sim.close();
  });

  test('a write that fails transiently is sent again by the watcher and ends archived; a permanent failure is dead-lettered with its reason until retried', async () => {
    const root = tempDir('journey');
    const folder = path.join(root, 'in');
    const archive = path.join(root, 'archive');
    fs.mkdirSync(folder);
    // The first two uploads fail the way a flaky network does (no answer; a 502 page from a proxy).
    sim.benchling.injectFault({ kind: 'reset', method: 'POST', path: /\/blobs/ });
    sim.benchling.injectFault({ kind: 'html', method: 'POST', path: /\/blobs/ });
    const loaded = await loadFlow(
      ['benchling-tenant', 'lab-watch-folder', 'benchling-upload-blob', 'catch', 'function'],
      flow(sim.benchling.url, folder, archive),
      { tenant: { apiKey: DEFAULT_API_KEY } },
    );
    const uploaded: any[] = [];
    const caught: any[] = [];
    loaded.getNode('uploaded').on('input', (m: any) => uploaded.push(m));
    loaded.getNode('caught').on('input', (m: any) => caught.push(m));
    const watch = loaded.getNode('watch');

    fs.writeFileSync(path.join(folder, 'plate-1.csv'), 'well,od\nA1,0.1\n');
    await waitFor(() => fs.existsSync(path.join(archive, 'plate-1.csv')), 15_000, 'plate-1 archived');
    assert.ok(caught.length >= 1, 'the failures reached the Catch node');
    assert.ok(['NETWORK', 'HTTP', 'BAD_RESPONSE', 'TIMEOUT'].includes(caught[0].error.code), `transient code: ${caught[0].error.code}`);
    assert.equal(uploaded.length, 1);
    assert.equal(uploaded[0].labwireFile.attempt, caught.length + 1, 'each re-send carries its attempt number');

    fs.writeFileSync(path.join(folder, 'reject-me.csv'), 'nonsense');
    await waitFor(() => caught.some((m) => m.file?.name === 'reject-me.csv'), 10_000, 'the rejection');
    const id = caught.find((m) => m.file?.name === 'reject-me.csv').labwireFile.id;
    await delay(1500); // several backoffs' worth: a dead-letter must not come back on its own
    assert.equal(caught.filter((m) => m.file?.name === 'reject-me.csv').length, 1, 'a permanent failure is not retried');
    assert.ok(fs.existsSync(path.join(folder, 'reject-me.csv')), 'a dead-lettered file stays where it is');
    await waitFor(() => watch.status.getCalls().some((c: any) => c.args[0].fill === 'red' && /1 failed/.test(c.args[0].text)), 3000, 'a red status counting the dead-letter');

    // Someone asks for it again (here by the journey id; a path works too): a new attempt.
    watch.receive({ topic: 'retry', payload: id });
    await waitFor(() => caught.filter((m) => m.file?.name === 'reject-me.csv').length === 2, 5000, 'the retried attempt');
    assert.equal(caught.filter((m) => m.file?.name === 'reject-me.csv')[1].labwireFile.attempt, 2);
    // … and marks it done by hand: it is not sent again.
    watch.receive({ topic: 'skip', payload: path.join(folder, 'reject-me.csv'), user: 'ops' });
    await delay(800);
    assert.equal(caught.filter((m) => m.file?.name === 'reject-me.csv').length, 2);
    const blobs = sim.benchling.listBlobs().filter((b) => b.name === 'plate-1.csv');
    assert.equal(blobs.length, 1, `one blob for plate-1, got ${blobs.length}`);
  });
});
