/**
 * Every write of the lab loop is recoverable: the same file sent again after a failure — a reset,
 * a 500 or a proxy's 502 page AFTER the server acted (the answer is lost), or before — or after a
 * restart, never orphans a blob with data in it and never makes a second processor or a second
 * processing task. Real Node-RED, real HTTP to the simulator (its `after: true` faults).
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, LabSimulator, SEED, DEFAULT_API_KEY } from '../simulator';
import type { FaultSpec } from '../simulator/benchling';
import { stateFilePath } from '../nodes/lib/journal';
import { BenchlingClient } from '../nodes/clients/benchling/client';
import { abortMultipart } from '../nodes/clients/benchling/blob-upload';
import { helper, loadFlow, nextMessage, tempDir, unload, delay } from './support/nodered';

const TYPES = ['catch', 'benchling-tenant', 'benchling-upload-blob', 'benchling-create-processor', 'benchling-poll-task'];

function flow(url: string) {
  return [
    { id: 'tab', type: 'tab', label: 'recovery' },
    { id: 'tenant', type: 'benchling-tenant', z: 'tab', url, rateLimit: 600, timeout: 5 },
    { id: 'upload', type: 'benchling-upload-blob', z: 'tab', tenant: 'tenant', file: 'payload', fileType: 'msg', wires: [['create', 'uploaded']] },
    {
      id: 'create',
      type: 'benchling-create-processor',
      z: 'tab',
      tenant: 'tenant',
      assayRunId: 'assayRunId',
      assayRunIdType: 'msg',
      configName: SEED.outputConfigName,
      configNameType: 'str',
      fileId: 'blobId',
      fileIdType: 'msg',
      wires: [['poll']],
    },
    { id: 'poll', type: 'benchling-poll-task', z: 'tab', name: 'follow', tenant: 'tenant', taskId: 'taskId', taskIdType: 'msg', interval: 0.05, maxInterval: 0.2, timeout: 20, wires: [['ok'], ['failed']] },
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'uploaded', type: 'helper', z: 'tab' },
    { id: 'ok', type: 'helper', z: 'tab' },
    { id: 'failed', type: 'helper', z: 'tab' },
    { id: 'caught', type: 'helper', z: 'tab' },
  ];
}

/** The upload journal's live records, read from its file (the node keeps it open). */
function uploadJournal(userDir: string): Map<string, { state: string; blobId: string; size: number; at: number }> {
  const map = new Map();
  const file = stateFilePath(userDir, 'benchling-upload-blob', 'upload');
  if (!fs.existsSync(file)) return map;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line);
    if (r.d) map.delete(r.k);
    else map.set(r.k, r.v);
  }
  return map;
}

describe('Recovery of every write after a lost answer, a re-send or a restart', () => {
  let sim: LabSimulator;
  let dir: string;

  before(async () => {
    sim = await startLabSimulator({ benchling: { rateLimit: false, taskDurationMs: 150 } });
    dir = tempDir('recovery');
    await helper.startServer();
  });
  afterEach(async () => {
    sim.benchling.clearFaults();
    await unload();
  });
  after(async () => {
    await helper.stopServer();
    await sim.close();
  });

  const load = (userDir: string) => loadFlow(TYPES, flow(sim.benchling.url), { tenant: { apiKey: DEFAULT_API_KEY } }, userDir);

  function csv(name: string, body = 'well,od\nA1,0.1\nA2,0.2\n'): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, body);
    return file;
  }

  /** Sends the file; resolves with the error the Catch node got. */
  async function sendExpectingError(h: any, file: string, run: string = SEED.runs[0].id): Promise<any> {
    const caught = nextMessage(h.getNode('caught'), 20_000);
    h.getNode('upload').receive({ payload: file, assayRunId: run });
    return caught;
  }

  /** The watcher's re-send: the same file again; resolves with the msg at "ok". */
  async function resend(h: any, file: string, run: string = SEED.runs[0].id, out = 'ok'): Promise<any> {
    const done = nextMessage(h.getNode(out), 20_000);
    const caught = h.getNode('caught');
    const onError = (m: any) => (failure = m.error);
    let failure: unknown;
    caught.on('input', onError);
    h.getNode('upload').receive({ payload: file, assayRunId: run });
    try {
      return await done;
    } catch (err) {
      throw failure ? new Error(`the re-send failed: ${JSON.stringify(failure)}`) : err;
    } finally {
      caught.removeListener('input', onError);
    }
  }

  /**
   * Exactly one COMPLETE blob for the file, the one the journal holds; every other blob the
   * simulator made for it holds no data (a start whose answer was lost) or was aborted.
   */
  function assertOneBlob(userDir: string, file: string): string {
    const name = path.basename(file);
    const blobs = sim.benchling.listBlobs().filter((b) => b.name === name);
    const complete = blobs.filter((b) => b.uploadStatus === 'COMPLETE');
    assert.equal(complete.length, 1, `COMPLETE blobs for ${name}: ${JSON.stringify(blobs)}`);
    const recorded = [...uploadJournal(userDir).values()].map((r) => r.blobId);
    assert.ok(recorded.includes(complete[0].id), 'the COMPLETE blob is journalled');
    for (const b of blobs) {
      if (b.uploadStatus === 'COMPLETE' || b.uploadStatus === 'ABORTED') continue;
      assert.equal(b.parts.length, 0, `unrecorded blob ${b.id} holds data`);
    }
    assert.equal(complete[0].md5 !== undefined, true);
    return complete[0].id;
  }

  function assertOneProcessorOneTask(blobId: string): Record<string, unknown> {
    const procs = sim.benchling.listProcessors().filter((p) => (p.file as { id?: string } | null)?.id === blobId);
    assert.equal(procs.length, 1, 'exactly one processor for the file');
    const tasks = sim.benchling.listTasks().filter((t) => t.targetId === procs[0].id);
    assert.equal(tasks.length, 1, 'processing was started once');
    return procs[0];
  }

  const PART_RESET = 'reset after handling on a part';
  const uploadFaults: Array<[string, FaultSpec]> = [
    ['reset after handling on :start-multipart-upload', { kind: 'reset', after: true, method: 'POST', path: /\/blobs:start-multipart-upload$/ }],
    [PART_RESET, { kind: 'reset', after: true, method: 'POST', path: /\/parts$/ }],
    ['reset after handling on :complete-upload', { kind: 'reset', after: true, method: 'POST', path: /:complete-upload$/ }],
    ['502 HTML page after handling on :complete-upload', { kind: 'html', after: true, method: 'POST', path: /:complete-upload$/ }],
    ['reset before handling on :complete-upload (parts sent, upload left IN_PROGRESS)', { kind: 'reset', method: 'POST', path: /:complete-upload$/ }],
  ];
  for (const [what, fault] of uploadFaults) {
    test(`${what}: the re-send makes exactly one COMPLETE blob, recorded`, async () => {
      const userDir = tempDir('rec-upload');
      const file = csv(`up-${what.replace(/\W+/g, '-')}.csv`);
      const h = await load(userDir);
      sim.benchling.injectFault(fault);
      // A part is idempotent: the client sends it again by itself, no re-send needed.
      const first = what === PART_RESET ? await resend(h, file) : (await sendExpectingError(h, file), await resend(h, file));
      assert.equal(first.payload.status, 'SUCCEEDED');
      const blobId = assertOneBlob(userDir, file);
      assert.equal(first.blobId, blobId);
      assertOneProcessorOneTask(blobId);
    });
  }

  for (const kind of ['reset', '500', 'html'] as const) {
    test(`${kind} after handling on the processor create: found on the re-send, not created twice`, async () => {
      const userDir = tempDir('rec-create');
      const file = csv(`create-${kind}.csv`);
      const h = await load(userDir);
      sim.benchling.injectFault({ kind, after: true, method: 'POST', path: /\/automation-output-processors$/ });
      const err = await sendExpectingError(h, file);
      assert.equal(err.error.source.id, 'create');
      const m = await resend(h, file);
      assert.equal(m.payload.status, 'SUCCEEDED');
      assert.equal(m.processorReused, undefined);
      const blobId = assertOneBlob(userDir, file);
      assertOneProcessorOneTask(blobId);
    });
  }

  test('reset before handling on the processor create: looked up, then created once', async () => {
    const userDir = tempDir('rec-create-before');
    const file = csv('create-before.csv');
    const h = await load(userDir);
    sim.benchling.injectFault({ kind: 'reset', method: 'POST', path: /automation-output-processors$/ });
    await sendExpectingError(h, file);
    const m = await resend(h, file);
    assert.equal(m.payload.status, 'SUCCEEDED');
    assertOneProcessorOneTask(assertOneBlob(userDir, file));
  });

  test('reset after handling on :process-output: not called again, the processor is followed to SUCCEEDED', async () => {
    const userDir = tempDir('rec-process');
    const file = csv('process-lost.csv');
    const h = await load(userDir);
    sim.benchling.injectFault({ kind: 'reset', after: true, method: 'POST', path: /:process-output$/ });
    await sendExpectingError(h, file);
    const m = await resend(h, file);
    assert.equal(m.followProcessor, true);
    assert.equal(m.taskId, undefined);
    assert.equal(m.payload.status, 'SUCCEEDED', 'output 1 carries the processor');
    assert.equal(m.payload.id, m.processorId);
    assertOneProcessorOneTask(assertOneBlob(userDir, file));
  });

  test('500 before handling on :process-output: NOT_STARTED, so processing is started on the re-send', async () => {
    const userDir = tempDir('rec-process-before');
    const file = csv('process-before.csv');
    const h = await load(userDir);
    sim.benchling.injectFault({ kind: '500', method: 'POST', path: /:process-output$/ });
    await sendExpectingError(h, file);
    const m = await resend(h, file);
    assert.ok(m.taskId, 'a task id: processing was started this time');
    assert.equal(m.payload.status, 'SUCCEEDED');
    assertOneProcessorOneTask(assertOneBlob(userDir, file));
  });

  test('a followed processor that FAILS goes to output 2 with msg.error TASK_FAILED and the error file link', async () => {
    const userDir = tempDir('rec-follow-fail');
    const file = csv('follow-rows.csv', 'well,od\nA1,0.1\n#FAIL row two\n');
    const h = await load(userDir);
    sim.benchling.injectFault({ kind: 'reset', after: true, method: 'POST', path: /:process-output$/ });
    await sendExpectingError(h, file, SEED.runs[1].id);
    const m = await resend(h, file, SEED.runs[1].id, 'failed');
    assert.equal(m.payload.status, 'FAILED');
    assert.equal(m.error.code, 'TASK_FAILED');
    assert.equal(m.error.message, m.payload.message);
    assert.deepEqual(m.error.source, { id: 'poll', type: 'benchling-poll-task', name: 'follow' });
    assert.match(m.error.errorFile, /^http/, 'the error file link');
    assert.equal(m.error.errorFile, m.errorFile.downloadURL);
  });

  test('a FAILED task: msg.error carries TASK_FAILED with Benchling\'s own message', async () => {
    const h = await load(tempDir('rec-task-fail'));
    const m = await resend(h, csv('FAIL-plate-rec.csv'), SEED.runs[1].id, 'failed');
    assert.equal(m.error.code, 'TASK_FAILED');
    assert.match(m.error.message, /failed \(simulated\)/);
    assert.equal(m.error.message, m.task.message);
    assert.equal(m.error.source.id, 'poll');
  });

  /** Leaves an `uploading` record whose blob is IN_PROGRESS with its part sent (the completion failed). */
  async function leaveUploading(userDir: string, file: string): Promise<string> {
    const h = await load(userDir);
    sim.benchling.injectFault({ kind: 'reset', method: 'POST', path: /:complete-upload$/ });
    await sendExpectingError(h, file);
    await unload();
    const [rec] = [...uploadJournal(userDir).values()];
    assert.equal(rec.state, 'uploading');
    assert.equal(sim.benchling.getBlob(rec.blobId)!.uploadStatus, 'IN_PROGRESS');
    return rec.blobId;
  }

  test('restart with an unfinished upload whose file is unchanged: kept, then finished on the re-send', async () => {
    const userDir = tempDir('rec-restart');
    const file = csv('restart-same.csv');
    const blobId = await leaveUploading(userDir, file);
    const h = await load(userDir);
    await delay(300);
    assert.equal(sim.benchling.getBlob(blobId)!.uploadStatus, 'IN_PROGRESS', 'not aborted at start');
    const up = nextMessage(h.getNode('uploaded'));
    const m = await resend(h, file);
    assert.equal((await up).blob.resumed, true);
    assert.equal(m.blobId, blobId, 'the same blob, completed');
    assert.equal(assertOneBlob(userDir, file), blobId);
  });

  for (const change of ['gone', 'changed'] as const) {
    test(`restart with an unfinished upload whose file is ${change}: aborted at start and forgotten`, async () => {
      const userDir = tempDir('rec-restart-gone');
      const file = csv(`restart-${change}.csv`);
      const blobId = await leaveUploading(userDir, file);
      if (change === 'gone') fs.rmSync(file);
      else fs.appendFileSync(file, 'A3,0.3\n');
      await load(userDir);
      for (let i = 0; i < 50 && sim.benchling.getBlob(blobId)!.uploadStatus !== 'ABORTED'; i++) await delay(50);
      assert.equal(sim.benchling.getBlob(blobId)!.uploadStatus, 'ABORTED');
      assert.equal(uploadJournal(userDir).size, 0, 'the record is gone');
    });
  }

  test('an upload Benchling refuses on the re-send (aborted meanwhile) is replaced by a new one, recorded first', async () => {
    const userDir = tempDir('rec-refused');
    const file = csv('refused.csv');
    const blobId = await leaveUploading(userDir, file);
    // Aborted behind the node's back (or expired): GET says ABORTED, so a new upload starts.
    const client = new BenchlingClient({ tenantUrl: sim.benchling.url, apiKey: DEFAULT_API_KEY, rateLimit: { limit: 600, windowMs: 30_000 } });
    assert.equal(await abortMultipart(client.http, blobId), true);
    client.close();
    const h = await load(userDir);
    const m = await resend(h, file);
    assert.notEqual(m.blobId, blobId);
    assert.equal(assertOneBlob(userDir, file), m.blobId);
  });
});
