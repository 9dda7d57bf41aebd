// Contract check: every simulator endpoint is driven with raw HTTP requests and every request and
// answer goes through the OpenAPI checker (test/support/openapi.ts). Zero violations expected.
// Skips (printing the reason) when the shared spec is absent.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startLabSimulator, SEED, type LabSimulator, type BenchlingSim, type SimExchange } from '../simulator';
import {
  loadBenchlingContract,
  skipReason,
  contractSkipReason,
  benchlingSpecPath,
  formatViolations,
  type BenchlingContract,
  type Violation,
} from './support/openapi';

const md5 = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('contract loader', () => {
  test('LABWIRE_SHARED_DIR pointing at an empty folder → null contract and a printable skip reason', () => {
    const saved = process.env.LABWIRE_SHARED_DIR;
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'labwire-empty-shared-'));
    try {
      process.env.LABWIRE_SHARED_DIR = empty;
      assert.equal(benchlingSpecPath(), null);
      assert.equal(loadBenchlingContract(), null);
      const reason = contractSkipReason();
      assert.ok(reason.includes(empty), reason);
      assert.match(reason, /LABWIRE_SHARED_DIR/);
    } finally {
      if (saved === undefined) delete process.env.LABWIRE_SHARED_DIR;
      else process.env.LABWIRE_SHARED_DIR = saved;
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});

if (skipReason) console.log(`# simulator contract: skipped: ${skipReason}`);

describe('benchling simulator vs OpenAPI contract', { skip: skipReason || false }, () => {
  let contract: BenchlingContract;
  let lab: LabSimulator;
  let sim: BenchlingSim;
  const seen: Array<{ ex: SimExchange; violations: Violation[]; invalidOnPurpose: boolean }> = [];
  // set around requests that break the contract on purpose (their answers must still conform)
  let invalidOnPurpose = false;
  async function onPurpose<T>(p: () => Promise<T>): Promise<T> {
    invalidOnPurpose = true;
    try {
      return await p();
    } finally {
      invalidOnPurpose = false;
    }
  }

  before(async () => {
    contract = loadBenchlingContract()!;
    assert.ok(contract, 'contract should load');
    lab = await startLabSimulator({
      benchling: {
        rateLimit: false,
        taskDurationMs: 100,
        oauthClients: [{ clientId: 'sim-app', clientSecret: 'sim-secret' }],
        validator: (ex) => seen.push({ ex, violations: contract.checkExchange(ex), invalidOnPurpose }),
      },
    });
    sim = lab.benchling;
  });
  after(async () => {
    if (lab) await lab.close();
  });

  // A Content-Type only with a body: the checker counts a Content-Type on an operation that takes
  // no request body as a violation (as a validating proxy would, with 415).
  const H = (): Record<string, string> => ({ authorization: sim.authHeader() });
  async function call(method: string, p: string, body?: unknown, headers: Record<string, string> = H()) {
    if (body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers = { ...headers, 'content-type': 'application/json' };
    const r = await fetch(sim.apiBase + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), redirect: 'manual' });
    const text = await r.text();
    let json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: r.status, body: json };
  }
  async function waitTask(taskId: string) {
    for (let i = 0; i < 100; i++) {
      const r = await call('GET', `/tasks/${taskId}`);
      if (r.body.status !== 'RUNNING') return r;
      await sleep(30);
    }
    throw new Error('task did not finish');
  }

  test('drive every endpoint; every exchange matches the spec', async () => {
    const run1: string = SEED.runs[0].id;
    // --- blobs, single part
    const csv = Buffer.from('Well,OD450\nA1,0.1\nA2,0.2\n');
    const blob = await call('POST', '/blobs', { name: 'plate.csv', type: 'RAW_FILE', data64: csv.toString('base64'), md5: md5(csv), mimeType: 'text/csv' });
    assert.equal(blob.status, 200);
    await call('POST', '/blobs', { name: 'bad.csv', type: 'RAW_FILE', data64: csv.toString('base64'), md5: md5(Buffer.from('x')) });
    await onPurpose(() => call('POST', '/blobs', { name: 'bad.csv', type: 'RAW_FILE', data64: 'AA==', md5: 'x', extra: true }));
    await call('GET', `/blobs/${blob.body.id}`);
    await call('GET', '/blobs/00000000-0000-4000-8000-00000000dead');
    await call('GET', `/blobs:bulk-get?blobIds=${blob.body.id}`);
    await call('GET', `/blobs/${blob.body.id}/download-url`);
    await call('GET', '/blobs/00000000-0000-4000-8000-00000000dead/download-url');
    assert.equal((await call('GET', `/blobs/${blob.body.id}/download`)).status, 302);

    // --- blobs, multipart
    const mp = await call('POST', '/blobs:start-multipart-upload', { name: 'big.bin', type: 'RAW_FILE', mimeType: 'application/octet-stream' });
    const p1 = crypto.randomBytes(5_242_880);
    const p2 = crypto.randomBytes(1000);
    const e1 = await call('POST', `/blobs/${mp.body.id}/parts`, { partNumber: 1, data64: p1.toString('base64'), md5: md5(p1) });
    const e2 = await call('POST', `/blobs/${mp.body.id}/parts`, { partNumber: 2, data64: p2.toString('base64'), md5: md5(p2) });
    await call('POST', `/blobs/${mp.body.id}/parts`, { partNumber: 3, data64: p2.toString('base64'), md5: md5(p1) });
    await call('GET', `/blobs/${mp.body.id}/download-url`); // IN_PROGRESS → 400
    await call('POST', `/blobs/${mp.body.id}:complete-upload`, { parts: [e1.body, { partNumber: 2, eTag: '"nope"' }] });
    const done = await call('POST', `/blobs/${mp.body.id}:complete-upload`, { parts: [e1.body, e2.body] });
    assert.equal(done.body.uploadStatus, 'COMPLETE');
    const mp2 = await call('POST', '/blobs:start-multipart-upload', { name: 'aborted.bin', type: 'VISUALIZATION' });
    // abort declares no request body: sent with none (no Content-Type), answered 200 {}; again on the aborted blob
    assert.deepEqual((await call('POST', `/blobs/${mp2.body.id}:abort-upload`)).body, {});
    assert.equal((await call('POST', `/blobs/${mp2.body.id}:abort-upload`)).status, 200);

    // --- assay runs
    const page1 = await call('GET', `/assay-runs?schemaId=${SEED.schemaId}&pageSize=2`);
    await call('GET', `/assay-runs?schemaId=${SEED.schemaId}&pageSize=2&nextToken=${page1.body.nextToken}`);
    await call('GET', `/assay-runs?schemaId=${SEED.schemaId}&minCreatedTime=0&maxCreatedTime=4102444800&ids=${run1}`);
    await onPurpose(() => call('GET', '/assay-runs')); // schemaId missing → 400 (not declared by the spec; excused)
    await call('GET', `/assay-runs/${run1}`);
    await call('GET', '/assay-runs/nope');
    if (contract.findOperation('GET', '/api/v2/assay-runs:bulk-get')) await call('GET', `/assay-runs:bulk-get?assayRunIds=${run1}`);

    // --- input generators
    const gens = await call('GET', `/assay-runs/${run1}/automation-input-generators`);
    const genId = gens.body.automationInputGenerators[0].id;
    await call('GET', `/automation-input-generators/${genId}`);
    await call('GET', '/automation-input-generators/aif_nope');
    await call('PATCH', `/automation-input-generators/${genId}`, { fileId: blob.body.id });
    await call('PATCH', `/automation-input-generators/${genId}`, { fileId: null });
    const gt = await call('POST', `/automation-input-generators/${genId}:generate-input`);
    assert.equal(gt.status, 202);
    await call('GET', `/tasks/${gt.body.taskId}`);
    const gdone = await waitTask(gt.body.taskId);
    assert.equal(gdone.body.status, 'SUCCEEDED');
    assert.deepEqual(contract.validateSchema('AutomationInputGenerator', gdone.body.response), []);
    const failGen = sim.inputGeneratorIds(sim.addAssayRun({ inputConfigNames: ['FAIL input'] }).id as string)[0];
    const fgt = await call('POST', `/automation-input-generators/${failGen}:generate-input`);
    assert.equal((await waitTask(fgt.body.taskId)).body.status, 'FAILED');

    // --- output processors
    const create = (fileId: string, extra: Record<string, unknown> = {}) =>
      call('POST', '/automation-output-processors', { assayRunId: run1, automationFileConfigName: SEED.outputConfigName, fileId, ...extra });
    const aop = await create(blob.body.id, { completeWithErrors: false, folderId: 'lib_x', locationId: 'loc_x', timezone: 'UTC' });
    assert.equal(aop.status, 201);
    await create('nope');
    await call('POST', '/automation-output-processors', { assayRunId: run1, automationFileConfigName: 'Nope', fileId: blob.body.id });
    await call('GET', `/automation-output-processors/${aop.body.id}`);
    await call('GET', '/automation-output-processors/aop_nope');
    await call('PATCH', `/automation-output-processors/${aop.body.id}`, { fileId: blob.body.id });
    await call('GET', `/automation-output-processors?assayRunId=${run1}&automationFileConfigName=${encodeURIComponent(SEED.outputConfigName)}`);
    await call('GET', '/automation-output-processors?archiveReason=ANY_ARCHIVED_OR_NOT_ARCHIVED');
    const pt = await call('POST', `/automation-output-processors/${aop.body.id}:process-output`);
    assert.equal(pt.status, 202);
    await call('POST', `/automation-output-processors/${aop.body.id}:process-output`); // already running → 400
    await call('GET', `/tasks/${pt.body.taskId}`);
    const pdone = await waitTask(pt.body.taskId);
    assert.equal(pdone.body.status, 'SUCCEEDED');
    assert.deepEqual(contract.validateSchema('AutomationOutputProcessor', pdone.body.response), []);
    const failBlob = await call('POST', '/blobs', { name: 'FAIL.csv', type: 'RAW_FILE', data64: csv.toString('base64'), md5: md5(csv) });
    const faop = await create(failBlob.body.id);
    const ft = await call('POST', `/automation-output-processors/${faop.body.id}:process-output`);
    assert.equal((await waitTask(ft.body.taskId)).body.status, 'FAILED');
    await call('GET', `/automation-output-processors/${faop.body.id}`); // with errorFile
    await call('POST', '/automation-output-processors:archive', { automationOutputProcessorIds: [faop.body.id], reason: 'Other' });
    await call('POST', '/automation-output-processors:archive', { automationOutputProcessorIds: ['aop_nope'] });
    await call('GET', '/automation-output-processors?archiveReason=ANY_ARCHIVED');
    await call('POST', '/automation-output-processors:unarchive', { automationOutputProcessorIds: [faop.body.id] });
    await call('GET', '/tasks/00000000-0000-4000-8000-00000000dead');

    // --- OAuth token hook
    const basic = (u: string, p: string) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const tok = await fetch(`${sim.apiBase}/token`, { method: 'POST', headers: { ...form, authorization: basic('sim-app', 'sim-secret') }, body: 'grant_type=client_credentials' });
    const tokBody = (await tok.json()) as { access_token: string };
    assert.equal(tok.status, 200);
    await fetch(`${sim.apiBase}/token`, { method: 'POST', headers: form, body: 'grant_type=client_credentials&client_id=sim-app&client_secret=wrong' });
    await onPurpose(() => fetch(`${sim.apiBase}/token`, { method: 'POST', headers: form, body: 'grant_type=password' }));
    assert.equal((await call('GET', `/assay-runs/${run1}`, undefined, { authorization: `Bearer ${tokBody.access_token}` })).status, 200);

    // --- generic answers: 401, 429, 5xx (incl. an HTML 502)
    assert.equal((await call('GET', `/assay-runs/${run1}`, undefined, {})).status, 401);
    // a wrong key on an operation whose responses list no 401 (getTask: 200, 404) → 401, accepted as generic
    const wrongKey = { authorization: 'Basic ' + Buffer.from('sk_wrong:').toString('base64') };
    assert.equal((await call('GET', `/tasks/${pt.body.taskId}`, undefined, wrongKey)).status, 401);
    for (const kind of ['500', '503', 'html', '429'] as const) {
      sim.injectFault({ kind });
      await call('GET', `/assay-runs/${run1}`);
    }
    sim.setRateLimit({ limit: 1, windowMs: 60_000 });
    await call('GET', `/assay-runs/${run1}`);
    assert.equal((await call('GET', `/assay-runs/${run1}`)).status, 429);
    sim.setRateLimit(false);

    // --- verdict
    assert.deepEqual(sim.validatorErrors, []);
    const label = (s: (typeof seen)[number]) => `${s.ex.method} ${s.ex.path} → ${s.ex.status}`;
    const bad = seen.flatMap((s) =>
      s.violations.filter((v) => !s.invalidOnPurpose || v.where !== 'request').map((v) => ({ ...v, exchange: label(s) })),
    );
    assert.equal(bad.length, 0, formatViolations(bad));
    const purposely = seen.filter((s) => s.invalidOnPurpose);
    assert.equal(purposely.length, 3);
    for (const s of purposely) {
      assert.ok(s.violations.some((v) => v.where === 'request'), `checker missed the broken request ${label(s)}`);
      assert.equal(s.ex.status, 400, label(s));
    }
    // coverage: every lab-automation operation was exercised, and the expected statuses were seen
    const ops = new Set(seen.map((s) => contract.findOperation(s.ex.method, s.ex.path)?.operationId));
    for (const op of [
      'createBlob', 'getBlob', 'bulkGetBlobs', 'getBlobUrl', 'getBlobFile', 'createMultipartBlob', 'createBlobPart',
      'completeMultipartBlob', 'abortMultipartBlob', 'listAssayRuns', 'getAssayRun', 'listAutomationInputGenerators',
      'getAutomationInputGenerator', 'updateAutomationInputGenerator', 'generateInputWithAutomationInputGenerator',
      'createAutomationOutputProcessor', 'getAutomationOutputProcessor', 'updateAutomationOutputProcessor',
      'listAutomationOutputProcessors', 'processOutputWithAutomationOutputProcessor', 'archiveAutomationOutputProcessors',
      'unarchiveAutomationOutputProcessors', 'getTask', 'generateToken',
    ]) {
      assert.ok(ops.has(op), `operation ${op} not exercised`);
    }
    const statuses = new Set(seen.map((s) => s.ex.status));
    for (const s of [200, 201, 202, 302, 400, 401, 404, 429, 500, 502, 503]) assert.ok(statuses.has(s), `status ${s} not seen`);
    assert.ok(seen.length > 60, `only ${seen.length} exchanges`);
  });

  describe('the checker itself catches deviations', () => {
    test('colon verbs map to the right operation', () => {
      assert.equal(contract.findOperation('POST', '/api/v2/blobs/abc:complete-upload')?.operationId, 'completeMultipartBlob');
      assert.equal(contract.findOperation('POST', '/api/v2/blobs/abc:abort-upload')?.operationId, 'abortMultipartBlob');
      assert.equal(contract.findOperation('GET', '/api/v2/blobs/abc')?.operationId, 'getBlob');
      assert.equal(contract.findOperation('POST', '/api/v2/blobs:start-multipart-upload')?.operationId, 'createMultipartBlob');
      assert.equal(contract.findOperation('POST', '/api/v2/automation-output-processors/aop_1:process-output')?.operationId, 'processOutputWithAutomationOutputProcessor');
      assert.deepEqual(contract.findOperation('POST', '/api/v2/blobs/abc/parts')?.pathParams, { blob_id: 'abc' });
      assert.equal(contract.findOperation('GET', '/blobs/abc'), null); // outside /api/v2
    });

    test('bad request bodies, queries and routes are reported', () => {
      const v1 = contract.checkRequest({ method: 'POST', path: '/api/v2/blobs', body: { name: 'x', type: 'PDF', data64: 'AA==', md5: 'x', extra: 1 } });
      assert.ok(v1.some((v) => /extra/.test(v.message)), formatViolations(v1));
      assert.ok(v1.some((v) => /allowed values|equal to one of/.test(v.message)), formatViolations(v1));
      const v2 = contract.checkRequest({ method: 'GET', path: '/api/v2/assay-runs', query: { pageSize: '500' } });
      assert.ok(v2.some((v) => /schemaId/.test(v.message)));
      assert.ok(v2.some((v) => /pageSize/.test(v.message)));
      const v3 = contract.checkRequest({ method: 'POST', path: '/api/v2/automation-output-processors/aop_1:process' });
      assert.equal(v3[0].where, 'route');
      const v4 = contract.checkRequest({ method: 'DELETE', path: '/api/v2/blobs' });
      assert.equal(v4[0].where, 'route');
      const v5 = contract.checkRequest({ method: 'POST', path: '/api/v2/blobs/abc/parts', body: { partNumber: 0, data64: 'AA==', md5: 'x' } });
      assert.ok(v5.some((v) => /partNumber/.test(v.message)));
      const v6 = contract.checkRequest({ method: 'GET', path: '/api/v2/automation-output-processors', query: { pageSize: '5' } });
      assert.ok(v6.some((v) => /not declared/.test(v.message)));
    });

    test('any body on an operation without requestBody is reported, {} included', () => {
      const abort = '/api/v2/blobs/abc:abort-upload';
      const pout = '/api/v2/automation-output-processors/aop_1:process-output';
      assert.deepEqual(contract.checkRequest({ method: 'POST', path: abort }), []);
      assert.deepEqual(contract.checkRequest({ method: 'POST', path: abort, bodyBytes: 0 }), []);
      assert.deepEqual(contract.checkRequest({ method: 'POST', path: pout, contentType: '' }), []);
      for (const req of [
        { body: {} },
        { body: {}, contentType: 'application/json' },
        { body: { reason: 'x' } },
        { body: [] },
        { body: null, contentType: 'application/json' },
        { contentType: 'application/json' }, // header without bytes
        { contentType: 'application/x-www-form-urlencoded', bodyBytes: 0 }, // what axios adds to a body-less POST
        { bodyBytes: 2 }, // bytes that were not parsed
      ]) {
        for (const p of [abort, pout]) {
          const v = contract.checkRequest({ method: 'POST', path: p, ...req });
          assert.ok(v.length > 0 && v.every((x) => x.where === 'request' && /takes no request body/.test(x.message)), `${p} ${JSON.stringify(req)}: ${formatViolations(v)}`);
        }
      }
      assert.ok(contract.checkRequest({ method: 'GET', path: '/api/v2/tasks/t1', contentType: 'application/json' }).length > 0);
      // a fault-injected exchange never read its request: its body is not judged
      const ex = { method: 'POST', path: abort, requestContentType: 'application/json', requestBodySkipped: 'fault-injected', requestBodyBytes: 2, status: 503, responseContentType: 'application/json', responseBody: { error: { type: 'api_error', message: 'x' } } };
      assert.deepEqual(contract.checkExchange(ex), []);
      assert.ok(contract.checkExchange({ ...ex, requestBodySkipped: 'not-json', status: 400 }).some((v) => /takes no request body/.test(v.message)));
    });

    test('bad responses are reported', () => {
      const req = { method: 'POST', path: '/api/v2/blobs' };
      const blob = { id: '4fb34c5e-abda-4a4b-b54c-36b9ad46924e', name: 'x', mimeType: 'text/csv', type: 'RAW_FILE', uploadStatus: 'COMPLETE' };
      assert.deepEqual(contract.checkResponse(req, { status: 200, body: blob }), []);
      assert.ok(contract.checkResponse(req, { status: 201, body: blob }).some((v) => /not declared/.test(v.message)));
      assert.ok(contract.checkResponse(req, { status: 200, body: { ...blob, uploadStatus: 'DONE' } }).length > 0);
      assert.ok(contract.checkResponse(req, { status: 200, body: { ...blob, id: 'not-a-uuid' } }).some((v) => /format/.test(v.message)));
      assert.deepEqual(contract.checkResponse(req, { status: 503, body: { error: { type: 'api_error', message: 'x' } } }), []);
      assert.ok(contract.checkResponse(req, { status: 503, body: { error: 'x' } }).length > 0);
      assert.deepEqual(contract.checkResponse(req, { status: 502, contentType: 'text/html' }), []);
      const task = { method: 'GET', path: '/api/v2/tasks/t1' };
      assert.deepEqual(contract.checkResponse(task, { status: 200, body: { status: 'RUNNING' } }), []);
      assert.ok(contract.checkResponse(task, { status: 200, body: { status: 'DONE' } }).length > 0);
      // generic statuses: 401 (wrong key) is accepted though getTask lists only 200 and 404; 415 and 403 are not
      assert.deepEqual(contract.checkResponse(task, { status: 401, body: { error: { type: 'authentication_error', message: 'Invalid API key.' } } }), []);
      assert.ok(contract.checkResponse(task, { status: 415, body: { error: { type: 'invalid_request_error', message: 'x' } } }).some((v) => /not declared/.test(v.message)));
      assert.ok(contract.checkResponse(task, { status: 403, body: { error: { type: 'invalid_request_error', message: 'x' } } }).some((v) => /not declared/.test(v.message)));
      assert.ok(contract.checkResponse({ method: 'GET', path: '/api/v2/assay-runs/x' }, { status: 404, body: { error: {} } }).length > 0);
      assert.deepEqual(contract.validateSchema('AutomationOutputProcessor', { id: 'aop_1', file: null, errorFile: null, archiveRecord: null }), []);
      assert.ok(contract.validateSchema('AutomationOutputProcessor', { id: 'aop_1', status: 'DONE' }).length > 0);
    });
  });
});
