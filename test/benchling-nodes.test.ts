/**
 * The Benchling nodes inside a real Node-RED runtime, talking HTTP to the lab simulator:
 * the file → blob → processor → task pipeline, durable reuse, and bad input — each bad case a
 * Catch-able error carrying the original msg, a red status, and no secret anywhere.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, LabSimulator, SEED, DEFAULT_API_KEY } from '../simulator';
import { Journal, stateFilePath } from '../nodes/lib/journal';
import { helper, loadFlow, nextMessage, tempDir, unload, delay } from './support/nodered';
import { freePort } from '../scripts/node-red-process';
import { closeSharedBuckets } from '../nodes/lib/http/redis-bucket';

const TYPES = ['benchling-tenant', 'benchling-upload-blob', 'benchling-create-processor', 'benchling-poll-task'];
const FAKE_BAD_KEY = 'sk_FAKE_wrong_key_for_tests';

interface FlowOptions {
  url?: string;
  timeout?: number;
  configName?: string;
  assayRunId?: string;
  redisUrl?: string;
}

function pipelineFlow(o: FlowOptions = {}) {
  return [
    { id: 'tab', type: 'tab', label: 'test' },
    { id: 'tenant', type: 'benchling-tenant', z: 'tab', url: o.url, rateLimit: 600, timeout: o.timeout ?? 5, redisUrl: o.redisUrl },
    { id: 'upload', type: 'benchling-upload-blob', z: 'tab', tenant: 'tenant', file: 'payload', fileType: 'msg', wires: [['create', 'uploaded']] },
    {
      id: 'create',
      type: 'benchling-create-processor',
      z: 'tab',
      tenant: 'tenant',
      assayRunId: o.assayRunId ?? 'assayRunId',
      assayRunIdType: o.assayRunId ? 'str' : 'msg',
      configName: o.configName ?? SEED.outputConfigName,
      configNameType: 'str',
      fileId: 'blobId',
      fileIdType: 'msg',
      wires: [['poll']],
    },
    { id: 'poll', type: 'benchling-poll-task', z: 'tab', tenant: 'tenant', taskId: 'taskId', taskIdType: 'msg', interval: 0.05, maxInterval: 0.2, timeout: 20, wires: [['ok'], ['failed']] },
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'uploaded', type: 'helper', z: 'tab' },
    { id: 'ok', type: 'helper', z: 'tab' },
    { id: 'failed', type: 'helper', z: 'tab' },
    { id: 'caught', type: 'helper', z: 'tab' },
  ];
}

describe('Benchling nodes in Node-RED', () => {
  let sim: LabSimulator;
  let dir: string;

  before(async () => {
    sim = await startLabSimulator({ benchling: { rateLimit: false, taskDurationMs: 150 } });
    dir = tempDir('nodes');
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

  function load(o: FlowOptions = {}, key = DEFAULT_API_KEY, userDir?: string) {
    return loadFlow(['catch', ...TYPES], pipelineFlow({ url: sim.benchling.url, ...o }), { tenant: { apiKey: key } }, userDir);
  }

  function csv(name: string, body = 'well,od\nA1,0.1\nA2,0.2\n'): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, body);
    return file;
  }

  test('a shared budget whose Redis cannot be reached: the work goes on, the status says so in yellow', async () => {
    // A port nobody listens on: the Redis of the tenant's shared budget is down.
    const h = await load({ redisUrl: `redis://127.0.0.1:${await freePort()}` });
    try {
      const done = nextMessage(h.getNode('ok'));
      h.getNode('upload').receive({ payload: csv('redis-down.csv'), assayRunId: SEED.runs[0].id });
      const msg = await done;
      assert.equal(msg.payload.status, 'SUCCEEDED', 'processing never stops for the shared budget');
      const last = h.getNode('poll').status.lastCall.args[0];
      assert.equal(last.fill, 'yellow');
      assert.equal(last.shape, 'ring');
      assert.match(last.text, /^Redis budget down/);
    } finally {
      closeSharedBuckets();
    }
  });

  test('file → blob → processor → task SUCCEEDED, with status along the way', async () => {
    const h = await load();
    const file = csv('run1.csv');
    const done = nextMessage(h.getNode('ok'));
    h.getNode('upload').receive({ payload: file, assayRunId: SEED.runs[0].id, topic: 'keep me' });
    const msg = await done;
    assert.equal(msg.topic, 'keep me', 'the msg travels on');
    assert.equal(msg.payload.status, 'SUCCEEDED');
    assert.equal(msg.payload.progressStats.rowsSucceeded, 2);
    assert.match(msg.processorId, /^aop_/);
    const procs = sim.benchling.listProcessors().filter((p) => p.id === msg.processorId);
    assert.equal(procs.length, 1);
    const statuses = h.getNode('upload').status.args.map((a: any[]) => a[0].text);
    assert.ok(statuses.some((t: string) => /^uploading \d+ %$/.test(t)), `upload status: ${statuses}`);
    assert.ok(h.getNode('poll').status.args.some((a: any[]) => /polling/.test(a[0].text)));
  });

  test('the same file again reuses its blob and its processor (nothing duplicated)', async () => {
    const userDir = tempDir('reuse');
    const file = csv('run-reuse.csv');
    let h = await load({}, DEFAULT_API_KEY, userDir);
    const first = nextMessage(h.getNode('ok'));
    h.getNode('upload').receive({ payload: file, assayRunId: SEED.runs[0].id });
    const m1 = await first;
    await unload(); // a redeploy / restart: the journals are reopened from disk
    const blobsBefore = sim.benchling.listBlobs().length;
    const procsBefore = sim.benchling.listProcessors().length;
    h = await load({}, DEFAULT_API_KEY, userDir);
    const second = nextMessage(h.getNode('ok'));
    const uploaded = nextMessage(h.getNode('uploaded'));
    h.getNode('upload').receive({ payload: file, assayRunId: SEED.runs[0].id });
    const [m2, up] = await Promise.all([second, uploaded]);
    assert.equal(up.blob.reused, true);
    assert.equal(m2.processorId, m1.processorId);
    assert.equal(m2.processorReused, true);
    assert.equal(sim.benchling.listBlobs().length, blobsBefore);
    assert.equal(sim.benchling.listProcessors().length, procsBefore);
  });

  test('a processor created before a crash but never processed is processed, not created again', async () => {
    const userDir = tempDir('crash');
    // What a crash between "create" and "process-output" leaves: a journal entry without task.
    const { blob } = await (async () => {
      const h = await load({}, DEFAULT_API_KEY, userDir);
      const up = nextMessage(h.getNode('uploaded'));
      const ok = nextMessage(h.getNode('ok'));
      h.getNode('upload').receive({ payload: csv('crash.csv'), assayRunId: SEED.runs[2].id });
      const m = await up;
      await ok;
      await unload();
      return { blob: m.payload };
    })();
    const journalFile = stateFilePath(userDir, 'benchling-create-processor', 'create');
    const j = Journal.open<any>(journalFile);
    const key = `${SEED.runs[2].id}|${SEED.outputConfigName}|${blob.id}`;
    const rec = j.get(key);
    j.set(key, { processor: rec.processor, at: rec.at }); // drop the taskId
    j.close();
    const tasksBefore = sim.benchling.listTasks().length;
    const procsBefore = sim.benchling.listProcessors().length;
    const h = await load({}, DEFAULT_API_KEY, userDir);
    const ok = nextMessage(h.getNode('ok'));
    h.getNode('create').receive({ blobId: blob.id, assayRunId: SEED.runs[2].id });
    const m = await ok;
    assert.equal(m.processorId, rec.processor.id);
    assert.equal(sim.benchling.listProcessors().length, procsBefore, 'no second processor');
    assert.equal(sim.benchling.listTasks().length, tasksBefore + 1, 'processing was started once');
  });

  test('a crash while the create request was in flight: the processor is found, not created twice', async () => {
    const userDir = tempDir('crash2');
    const h0 = await load({}, DEFAULT_API_KEY, userDir);
    const up = nextMessage(h0.getNode('uploaded'));
    const ok0 = nextMessage(h0.getNode('ok'));
    h0.getNode('upload').receive({ payload: csv('crash2.csv'), assayRunId: SEED.runs[2].id });
    const blob = (await up).payload;
    const first = await ok0;
    await unload();
    // What the journal holds if the process died after sending the create: only the marker.
    const j = Journal.open<any>(stateFilePath(userDir, 'benchling-create-processor', 'create'));
    const key = `${SEED.runs[2].id}|${SEED.outputConfigName}|${blob.id}`;
    j.set(key, { at: new Date().toISOString() });
    j.close();
    const procsBefore = sim.benchling.listProcessors().length;
    const h = await load({}, DEFAULT_API_KEY, userDir);
    const ok = nextMessage(h.getNode('ok'));
    h.getNode('create').receive({ blobId: blob.id, assayRunId: SEED.runs[2].id });
    const m = await ok;
    assert.equal(m.processorId, first.processorId);
    assert.equal(sim.benchling.listProcessors().length, procsBefore);
  });

  test('a FAILED task goes to the second output with its message', async () => {
    const h = await load();
    const failed = nextMessage(h.getNode('failed'));
    h.getNode('upload').receive({ payload: csv('FAIL-plate.csv'), assayRunId: SEED.runs[1].id });
    const msg = await failed;
    assert.equal(msg.payload.status, 'FAILED');
    assert.ok(msg.payload.message);
    // The final status tells the truth: red, not a green "FAILED".
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(h.getNode('poll').status.lastCall.args[0].fill, 'red');
  });

  test('${ENV} works in the tenant URL', async () => {
    process.env.LABWIRE_TEST_TENANT_URL = sim.benchling.url;
    try {
      const h = await load({ url: '${LABWIRE_TEST_TENANT_URL}' });
      const ok = nextMessage(h.getNode('ok'));
      h.getNode('upload').receive({ payload: csv('env.csv'), assayRunId: SEED.runs[0].id });
      assert.equal((await ok).payload.status, 'SUCCEEDED');
    } finally {
      delete process.env.LABWIRE_TEST_TENANT_URL;
    }
  });

  test('a 429 storm is waited out; no message is dropped', async () => {
    const h = await load();
    sim.benchling.injectFault({ kind: '429', times: 2 });
    const ok = nextMessage(h.getNode('ok'), 30_000);
    h.getNode('upload').receive({ payload: csv('storm.csv'), assayRunId: SEED.runs[0].id });
    assert.equal((await ok).payload.status, 'SUCCEEDED');
    assert.ok(h.getNode('upload').status.args.some((a: any[]) => /rate limit/.test(a[0].text)));
  });

  /** Sends `msg` to `start`, expects a Catch-able error matching `re` with the original msg. */
  async function expectCaught(h: any, start: string, msg: Record<string, unknown>, re: RegExp, secret?: string) {
    const caught = nextMessage(h.getNode('caught'), 20_000);
    h.getNode(start).receive({ ...msg, marker: 'original' });
    const m = await caught;
    assert.equal(m.marker, 'original', 'the Catch node gets the original msg');
    assert.match(m.error.message, re);
    assert.equal(m.error.source.id, start);
    const node = h.getNode(start);
    const last = node.status.lastCall.args[0];
    assert.equal(last.fill, 'red');
    assert.equal(last.shape, 'ring');
    if (secret) {
      const everything = JSON.stringify([m, node.status.args, node.error.args]);
      assert.ok(!everything.includes(secret), 'the secret leaked');
      assert.ok(!everything.includes(Buffer.from(`${secret}:`).toString('base64')), 'the encoded secret leaked');
    }
    return m;
  }

  test('malformed tenant URL', async () => {
    const h = await load({ url: 'not a url' });
    await expectCaught(h, 'upload', { payload: csv('u.csv') }, /tenant URL "not a url" is not a valid URL/);
  });

  test('wrong API key: 401 with advice, key never shown', async () => {
    const h = await load({}, FAKE_BAD_KEY);
    await expectCaught(h, 'upload', { payload: csv('k.csv') }, /HTTP 401.*check the credentials/, FAKE_BAD_KEY);
  });

  test('missing run id and missing config name', async () => {
    let h = await load();
    await expectCaught(h, 'create', { blobId: 'b' }, /"Assay run id" is missing \(msg.assayRunId is empty\)/);
    await unload();
    h = await load({ configName: '' });
    await expectCaught(h, 'create', { blobId: 'b', assayRunId: SEED.runs[0].id }, /"File config" is empty: set it in the node/);
  });

  test('file deleted between detection and upload; zero-byte file; not a path', async () => {
    const h = await load();
    await expectCaught(h, 'upload', { payload: path.join(dir, 'vanished.csv') }, /no longer exists/);
    const empty = csv('empty.csv', '');
    await expectCaught(h, 'upload', { payload: empty }, /is empty \(0 bytes\)/);
    await expectCaught(h, 'upload', { payload: { not: 'a path' } }, /msg.payload must be a file path or a Buffer, got object/);
  });

  test('an HTML error page instead of JSON', async () => {
    const h = await load();
    sim.benchling.injectFault({ kind: 'html', times: 1, method: 'POST', path: /\/blobs:start-multipart-upload$/ });
    await expectCaught(h, 'upload', { payload: csv('h.csv') }, /HTTP 502: HTML/);
  });

  test('a server that hangs: timeout error, the runtime carries on', async () => {
    const h = await load({ timeout: 0.3 });
    sim.benchling.injectFault({ kind: 'hang', times: 1, method: 'POST', path: /\/blobs:start-multipart-upload$/ });
    await expectCaught(h, 'upload', { payload: csv('hang.csv') }, /no answer within/);
    // and the next message goes through
    const ok = nextMessage(h.getNode('ok'));
    h.getNode('upload').receive({ payload: csv('after-hang.csv'), assayRunId: SEED.runs[0].id });
    assert.equal((await ok).payload.status, 'SUCCEEDED');
  });

  test('closing the flow mid-poll stops polling quietly', async () => {
    sim.benchling.setTaskDurationMs(60_000);
    try {
      const h = await load();
      const caught = h.getNode('caught');
      let errors = 0;
      caught.on('input', () => errors++);
      h.getNode('upload').receive({ payload: csv('slow.csv'), assayRunId: SEED.runs[0].id });
      await delay(600);
      const before = sim.benchling.counters.requests;
      await unload();
      await delay(500);
      assert.equal(errors, 0);
      assert.ok(sim.benchling.counters.requests - before <= 1, 'no polling after close');
    } finally {
      sim.benchling.setTaskDurationMs(150);
    }
  });
});
