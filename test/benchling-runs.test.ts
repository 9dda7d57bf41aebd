/**
 * The rest of the Benchling lab-automation guide in a real Node-RED runtime against the
 * simulator: find runs (paging), generate + download input files (expired URLs), the generic
 * request node, recovery after FAILED processing (archive and PATCH), error files, OAuth apps
 * (token renewal mid-flow) and the editor's schema list endpoint.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, LabSimulator, SEED, DEFAULT_API_KEY } from '../simulator';
import { BenchlingClient } from '../nodes/clients/benchling/client';
import { helper, loadFlow, messages, nextMessage, tempDir, unload, delay } from './support/nodered';

const APP = { clientId: 'sim-app-FAKE', clientSecret: 'sim-secret-FAKE-0123456789' };
const TYPES = [
  'catch',
  'benchling-tenant',
  'benchling-find-runs',
  'benchling-generate-input',
  'benchling-request',
  'benchling-upload-blob',
  'benchling-create-processor',
  'benchling-poll-task',
];

describe('Benchling: runs, input files, requests, recovery, apps', () => {
  let sim: LabSimulator;
  let dir: string;

  before(async () => {
    sim = await startLabSimulator({ benchling: { rateLimit: false, taskDurationMs: 120, oauthClients: [APP], tokenTtlSec: 3 } });
    dir = tempDir('runs');
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

  function flow(nodes: Array<Record<string, unknown>>, tenant: Record<string, unknown> = {}) {
    return [
      { id: 'tab', type: 'tab', label: 't' },
      { id: 'tenant', type: 'benchling-tenant', z: 'tab', url: sim.benchling.url, rateLimit: 600, timeout: 5, ...tenant },
      { id: 'catcher', type: 'catch', z: 'tab', scope: null, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 'tab' },
      { id: 'out', type: 'helper', z: 'tab' },
      { id: 'out2', type: 'helper', z: 'tab' },
      ...nodes.map((n) => ({ z: 'tab', tenant: 'tenant', ...n })),
    ];
  }
  const keyCreds = { tenant: { apiKey: DEFAULT_API_KEY } };

  test('find runs: every page, one message per run, entry filter', async () => {
    const schemaId = 'assaysch_manyRuns';
    const made = Array.from({ length: 130 }, (_, i) => sim.benchling.addAssayRun({ schemaId, schemaName: 'Many', entryId: i % 2 ? 'etr_odd' : 'etr_even' }));
    const h = await loadFlow(TYPES, flow([{ id: 'find', type: 'benchling-find-runs', schemaId, schemaIdType: 'str', output: 'each', wires: [['out']] }]), keyCreds);
    const got = messages(h.getNode('out'), 130);
    h.getNode('find').receive({ payload: 'go' });
    const msgs = await got;
    assert.deepEqual(new Set(msgs.map((m) => m.assayRunId)), new Set(made.map((r) => r.id)));
    assert.equal(msgs[0].parts.count, 130);
    await unload();

    const h2 = await loadFlow(TYPES, flow([{ id: 'find', type: 'benchling-find-runs', schemaId: 'schema', schemaIdType: 'msg', entryId: 'etr_odd', entryIdType: 'str', output: 'array', wires: [['out']] }]), keyCreds);
    const one = nextMessage(h2.getNode('out'));
    h2.getNode('find').receive({ schema: schemaId });
    const m = await one;
    assert.equal(m.payload.length, 65);
    assert.ok(m.payload.every((r: any) => r.entryId === 'etr_odd'));
  });

  test('generate input: the generated CSV is written atomically into the folder, even when its URL had expired', async () => {
    const out = path.join(dir, 'robot-inputs');
    fs.mkdirSync(out);
    const h = await loadFlow(
      TYPES,
      flow([{ id: 'gen', type: 'benchling-generate-input', assayRunId: 'assayRunId', assayRunIdType: 'msg', configName: SEED.inputConfigName, configNameType: 'str', output: 'file', folder: out, interval: 0.05, wires: [['out']] }]),
      keyCreds,
    );
    sim.benchling.expireNextDownloadUrls(2);
    const got = nextMessage(h.getNode('out'));
    h.getNode('gen').receive({ assayRunId: SEED.runs[0].id });
    const m = await got;
    assert.equal(path.dirname(m.payload), path.join(out, SEED.runs[0].id));
    const content = fs.readFileSync(m.payload, 'utf8');
    const blob = await sim.benchling.readBlob(m.blobId);
    assert.equal(content, blob.toString('utf8'));
    assert.ok(content.length > 0);
    assert.deepEqual(fs.readdirSync(path.dirname(m.payload)), [path.basename(m.payload)], 'no temp file left behind');
    const urlFetches = sim.benchling.requestLog.filter((e) => e.path.endsWith('/download-url')).length;
    assert.ok(urlFetches >= 3, `the expired URLs were fetched again (${urlFetches})`);
  });

  test('generate input into msg.payload; an unknown config name lists the ones the run has', async () => {
    const h = await loadFlow(
      TYPES,
      flow([
        { id: 'gen', type: 'benchling-generate-input', assayRunId: 'assayRunId', assayRunIdType: 'msg', configName: 'cfg', configNameType: 'msg', output: 'payload', interval: 0.05, wires: [['out']] },
      ]),
      keyCreds,
    );
    const ok = nextMessage(h.getNode('out'));
    h.getNode('gen').receive({ assayRunId: SEED.runs[1].id, cfg: SEED.inputConfigName });
    const m = await ok;
    assert.ok(Buffer.isBuffer(m.payload) && m.payload.length > 0);
    assert.match(m.filename, /\.csv$/);
    const caught = nextMessage(h.getNode('caught'));
    h.getNode('gen').receive({ assayRunId: SEED.runs[1].id, cfg: 'No Such Config' });
    const c = await caught;
    assert.match(c.error.message, new RegExp(`has no input file config "No Such Config" \\(it has: ${SEED.inputConfigName}\\)`));
  });

  test('benchling request: GET and PATCH through the tenant; paths outside the API are refused', async () => {
    const h = await loadFlow(TYPES, flow([{ id: 'req', type: 'benchling-request', method: 'msg', path: 'path', pathType: 'msg', wires: [['out']] }]), keyCreds);
    const got = nextMessage(h.getNode('out'));
    h.getNode('req').receive({ method: 'GET', path: `/assay-runs/${SEED.runs[0].id}` });
    const m = await got;
    assert.equal(m.statusCode, 200);
    assert.equal(m.payload.id, SEED.runs[0].id);
    for (const bad of ['https://evil.example/steal', '//evil.example/x', 'assay-runs', '/assay-runs/../../x']) {
      const caught = nextMessage(h.getNode('caught'));
      h.getNode('req').receive({ method: 'GET', path: bad });
      assert.match((await caught).error.message, /must be a Benchling API path/);
    }
    const caught = nextMessage(h.getNode('caught'));
    h.getNode('req').receive({ method: 'GET', path: '/assay-runs/not-a-run' });
    assert.match((await caught).error.message, /HTTP 400/);
  });

  /** Upload → create → poll, with a recovery setting, and the poll's two outputs. */
  function pipeline(recovery: string) {
    return flow([
      { id: 'up', type: 'benchling-upload-blob', file: 'payload', fileType: 'msg', wires: [['create']] },
      { id: 'create', type: 'benchling-create-processor', assayRunId: 'assayRunId', assayRunIdType: 'msg', configName: SEED.outputConfigName, configNameType: 'str', fileId: 'blobId', fileIdType: 'msg', recovery, wires: [['poll']] },
      { id: 'poll', type: 'benchling-poll-task', taskId: 'taskId', taskIdType: 'msg', interval: 0.05, maxInterval: 0.1, timeout: 20, wires: [['out'], ['out2']] },
    ]);
  }

  for (const recovery of ['archive', 'patch'] as const) {
    test(`a FAILED processing recovered by ${recovery === 'archive' ? 'archiving and creating anew' : 'PATCHing the file and processing again'}`, async () => {
      const h = await loadFlow(TYPES, pipeline(recovery), keyCreds);
      const bad = path.join(dir, `FAIL-${recovery}.csv`);
      fs.writeFileSync(bad, 'well,od\nA1,0.1\n');
      const failed = nextMessage(h.getNode('out2'));
      h.getNode('up').receive({ payload: bad, assayRunId: SEED.runs[2].id });
      const f = await failed;
      assert.equal(f.payload.status, 'FAILED');
      assert.ok(f.errorFile?.downloadURL, 'the failed processor\'s error file is surfaced');
      const failedId = f.processorId;

      // The same file again is refused: it would fail the same way.
      const caught = nextMessage(h.getNode('caught'));
      h.getNode('create').receive({ blobId: f.blobId, processorId: failedId, assayRunId: SEED.runs[2].id });
      assert.match((await caught).error.message, /send a corrected file/);

      const good = path.join(dir, `fixed-${recovery}.csv`);
      fs.writeFileSync(good, 'well,od\nA1,0.1\nA2,0.2\n');
      const ok = nextMessage(h.getNode('out'));
      h.getNode('up').receive({ payload: good, assayRunId: SEED.runs[2].id, processorId: failedId });
      const s = await ok;
      assert.equal(s.payload.status, 'SUCCEEDED');
      assert.equal(s.recoveredFrom, failedId);
      const old = sim.benchling.getProcessor(failedId)!;
      if (recovery === 'archive') {
        assert.notEqual(s.processorId, failedId);
        assert.ok(old.archiveRecord, 'the failed processor is archived');
      } else {
        assert.equal(s.processorId, failedId);
        assert.equal((old.file as { id: string }).id, s.blobId);
      }
    });
  }

  test('complete-with-errors: a SUCCEEDED task with failed rows surfaces the error file', async () => {
    const f = pipeline('none').map((x: any) => (x.id === 'create' ? { ...x, completeWithErrors: true } : x));
    const h2 = await loadFlow(TYPES, f, keyCreds);
    const file = path.join(dir, 'partial.csv');
    fs.writeFileSync(file, 'well,od\nA1,0.1\n#FAIL row B1\nA3,0.3\n');
    const ok = nextMessage(h2.getNode('out'));
    h2.getNode('up').receive({ payload: file, assayRunId: SEED.runs[0].id });
    const m = await ok;
    assert.equal(m.payload.status, 'SUCCEEDED');
    assert.ok(m.payload.progressStats.rowsFailed > 0);
    assert.ok(m.errorFile?.downloadURL);
  });

  test('OAuth app: token obtained, shared, renewed before expiry mid-flow and after a revocation', async () => {
    const h = await loadFlow(
      TYPES,
      flow([{ id: 'req', type: 'benchling-request', method: 'GET', path: `/assay-runs/${SEED.runs[0].id}`, pathType: 'str', wires: [['out']] }], { authType: 'oauth' }),
      { tenant: { clientId: APP.clientId, clientSecret: APP.clientSecret } },
    );
    const tokenCalls = () => sim.benchling.requestLog.filter((e) => e.path === '/api/v2/token').length;
    const before = tokenCalls();
    const ask = async () => {
      const got = nextMessage(h.getNode('out'));
      h.getNode('req').receive({});
      return got;
    };
    assert.equal((await ask()).statusCode, 200);
    assert.equal((await ask()).statusCode, 200);
    assert.equal(tokenCalls() - before, 1, 'one token for both requests');
    await delay(3200); // the token's lifetime (3 s) passes mid-flow
    assert.equal((await ask()).statusCode, 200);
    assert.equal(tokenCalls() - before, 2, 'renewed');
    sim.benchling.revokeAllTokens();
    assert.equal((await ask()).statusCode, 200);
    assert.equal(tokenCalls() - before, 3, 'renewed once after the 401');
  });

  test('OAuth app: the whole upload → processor → task pipeline', async () => {
    const f = pipeline('none').map((n: any) => (n.id === 'tenant' ? { ...n, authType: 'oauth' } : n));
    const h = await loadFlow(TYPES, f, { tenant: { clientId: APP.clientId, clientSecret: APP.clientSecret } });
    const file = path.join(dir, 'oauth.csv');
    fs.writeFileSync(file, 'well,od\nA1,0.1\n');
    const ok = nextMessage(h.getNode('out'));
    h.getNode('up').receive({ payload: file, assayRunId: SEED.runs[0].id });
    assert.equal((await ok).payload.status, 'SUCCEEDED');
  });

  test('OAuth app with a wrong secret: a clear 401, the secret nowhere', async () => {
    const wrong = 'sim-secret-WRONG-FAKE-987654';
    const h = await loadFlow(
      TYPES,
      flow([{ id: 'req', type: 'benchling-request', method: 'GET', path: '/assay-runs/x', pathType: 'str', wires: [['out']] }], { authType: 'oauth' }),
      { tenant: { clientId: APP.clientId, clientSecret: wrong } },
    );
    const caught = nextMessage(h.getNode('caught'));
    h.getNode('req').receive({});
    const c = await caught;
    assert.match(c.error.message, /HTTP 401/);
    assert.ok(!JSON.stringify(c).includes(wrong));
    assert.ok(!JSON.stringify(h.getNode('req').status.args).includes(wrong));
  });

  test('editor list of schemas with their file configs, behind the admin API', async () => {
    await loadFlow(TYPES, flow([]), keyCreds);
    const res = await helper.request().get('/labwire/benchling/tenants/tenant/schemas').expect(200);
    const seeded = res.body.find((s: any) => s.id === SEED.schemaId);
    assert.deepEqual(seeded.outputConfigs, [SEED.outputConfigName]);
    assert.deepEqual(seeded.inputConfigs, [SEED.inputConfigName]);
    const missing = await helper.request().get('/labwire/benchling/tenants/nope/schemas').expect(404);
    assert.match(missing.body.error, /deploy it first/);
  });

  test('client: schemas and input generators through every page', async () => {
    const client = new BenchlingClient({ tenantUrl: sim.benchling.url, apiKey: DEFAULT_API_KEY });
    const schemas = await client.listAssayRunSchemas();
    assert.ok(schemas.some((s) => s.id === SEED.schemaId));
    const gens = await client.listInputGenerators(SEED.runs[0].id);
    assert.equal(gens[0].automationFileConfig?.name, SEED.inputConfigName);
    client.close();
  });
});
