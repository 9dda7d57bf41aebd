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
import { startLabSimulator, LabSimulator, DEFAULT_API_KEY, SEED } from '../simulator';
import { helper, loadFlow, tempDir, unload, delay } from './support/nodered';

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(25);
  }
}

/** The live records of a journal file, replayed as the Journal does (deletes applied). */
function liveRecords(file: string): Map<string, unknown> {
  const live = new Map<string, unknown>();
  if (!fs.existsSync(file)) return live;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line) as { k: string; v?: unknown; d?: 1 };
    if (r.d) live.delete(r.k);
    else live.set(r.k, r.v);
  }
  return live;
}

function pipeline(url: string, folder: string, archive: string) {
  return [
    { id: 'tab', type: 'tab', label: 'pipeline' },
    { id: 'tenant', type: 'benchling-tenant', z: 'tab', url, rateLimit: 600, timeout: 5 },
    { id: 'watch', type: 'lab-watch-folder', z: 'tab', folder, include: '*.csv', stability: 0.2, probeInterval: 0.1, rescanInterval: 0.5, postAction: 'move', archiveFolder: archive, retryBase: 0.2, retryMax: 0.5, wires: [['upload']] },
    { id: 'upload', type: 'benchling-upload-blob', z: 'tab', tenant: 'tenant', file: 'payload', fileType: 'msg', wires: [['create']] },
    { id: 'create', type: 'benchling-create-processor', z: 'tab', tenant: 'tenant', assayRunId: SEED.runs[0].id, assayRunIdType: 'str', configName: SEED.outputConfigName, configNameType: 'str', fileId: 'blobId', fileIdType: 'msg', wires: [['poll']] },
    { id: 'poll', type: 'benchling-poll-task', z: 'tab', tenant: 'tenant', taskId: 'taskId', taskIdType: 'msg', interval: 0.05, maxInterval: 0.2, timeout: 20, wires: [['watch'], ['watch', 'failed']] },
    { id: 'catcher', type: 'catch', z: 'tab', scope: ['upload', 'create', 'poll'], uncaught: false, wires: [['watch']] },
    { id: 'failed', type: 'helper', z: 'tab' },
  ];
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

  test('a file\'s whole path is one journey: blob, processor and task in its history; the nodes\' own records go when it is done; a FAILED processing is dead-lettered with Benchling\'s reason', async () => {
    const root = tempDir('journey-pipeline');
    const folder = path.join(root, 'in');
    const archive = path.join(root, 'archive');
    const userDir = path.join(root, 'user');
    fs.mkdirSync(folder);
    const loaded = await loadFlow(
      ['benchling-tenant', 'lab-watch-folder', 'benchling-upload-blob', 'benchling-create-processor', 'benchling-poll-task', 'catch'],
      pipeline(sim.benchling.url, folder, archive),
      { tenant: { apiKey: DEFAULT_API_KEY } },
      userDir,
    );
    const failed: any[] = [];
    loaded.getNode('failed').on('input', (m: any) => failed.push(m));
    const watch = loaded.getNode('watch');
    for (let i = 1; i <= 3; i++) fs.writeFileSync(path.join(folder, `run-${i}.csv`), `well,od\nA1,0.${i}\n`);
    fs.writeFileSync(path.join(folder, 'FAIL-run-4.csv'), 'well,od\nA1,0.4\n');
    await waitFor(() => [1, 2, 3].every((i) => fs.existsSync(path.join(archive, `run-${i}.csv`))), 20_000, 'three files archived');
    await waitFor(() => watch.status.getCalls().some((c: any) => c.args[0].fill === 'red' && /1 failed/.test(c.args[0].text)), 10_000, 'the FAIL file dead-lettered');

    const state = path.join(userDir, 'labwire-state');
    const readHistory = () => fs.readdirSync(path.join(state, 'history', 'watch-folder-watch')).flatMap((f) =>
      fs.readFileSync(path.join(state, 'history', 'watch-folder-watch', f), 'utf8').trim().split('\n').map((l) => JSON.parse(l)),
      );
    // The history line is written right after the move that the archive check saw.
    await waitFor(() => readHistory().length >= 3, 5000, 'three finished journeys').catch(() => undefined);
    const history = readHistory();
    if (history.length !== 3) {
      console.log('DIAG history', JSON.stringify(history), 'ledger', JSON.stringify([...liveRecords(path.join(state, 'watch-folder-watch.jsonl'))]));
      console.log('DIAG raw ledger', fs.readFileSync(path.join(state, 'watch-folder-watch.jsonl'), 'utf8'));
    }
    assert.equal(history.length, 3);
    for (const h of history) {
      const p = sim.benchling.listProcessors().find((x) => x.id === h.steps.processorId) as { file?: { id?: string; name?: string }; status?: string } | undefined;
      assert.ok(p, `the journey of ${h.relativePath} names its processor`);
      assert.equal(p.file?.name, h.relativePath);
      assert.equal(p.file?.id, h.steps.blobId, 'and the blob it processed');
      assert.equal(h.steps.taskStatus, 'SUCCEEDED');
      assert.equal(h.state, 'done');
      assert.ok(h.archivedTo.startsWith(archive));
    }
    // The nodes' per-file records went with their journeys; only the dead-lettered file's remain.
    await delay(200);
    const uploads = liveRecords(path.join(state, 'benchling-upload-blob-upload.jsonl'));
    const processors = liveRecords(path.join(state, 'benchling-create-processor-create.jsonl'));
    assert.deepEqual([...uploads.keys()].map((k) => path.basename(k.split('|')[0])), ['FAIL-run-4.csv']);
    assert.equal(processors.size, 1);

    const ledger = liveRecords(path.join(state, 'watch-folder-watch.jsonl'));
    const dead = [...ledger.values()].find((v: any) => v?.state === 'failed') as any;
    assert.equal(dead.failure.code, 'TASK_FAILED');
    assert.match(dead.failure.message, /Output file processing failed \(simulated\)/);
    assert.equal(dead.failure.node.type, 'benchling-poll-task');
    assert.ok(dead.failure.errorFile?.downloadURL, 'the error file link is kept');
    assert.ok(dead.steps.processorId && dead.steps.blobId);
    assert.equal(failed.length, 1, 'processed once, never retried');

    // A person retries it (say, after fixing the output file config): processed anew by a new
    // processor, not answered again by the finished task of the failed one.
    const processorsOf = () => sim.benchling.listProcessorInfo().filter((p) => p.fileName === 'FAIL-run-4.csv');
    assert.equal(processorsOf().length, 1);
    watch.receive({ topic: 'retry', payload: dead.id });
    await waitFor(() => failed.length === 2, 10_000, 'the retried processing fails again (the simulator fails FAIL files)');
    const after = processorsOf();
    assert.equal(after.length, 2, 'a second processor for the retried file');
    assert.ok(after.every((p) => p.status === 'FAILED'));
    assert.equal(failed[1].labwireFile.reprocess, dead.steps.processorId, 'the retried attempt names the processor it replaces');
    assert.notEqual(failed[1].processorId, dead.steps.processorId);
    await waitFor(() => {
      const rec = [...liveRecords(path.join(state, 'watch-folder-watch.jsonl')).values()].find((v: any) => v?.id === dead.id) as any;
      return rec?.state === 'failed' && rec.steps.processorId === failed[1].processorId;
    }, 5000, 'dead-lettered again, naming the new processor');
  });
});
