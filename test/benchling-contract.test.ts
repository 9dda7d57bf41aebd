/**
 * Every request our Benchling client sends, and every answer the simulator gives it, checked
 * against Benchling's published OpenAPI spec (found through LABWIRE_SHARED_DIR; skipped with the
 * reason when the spec is absent, e.g. in a plain clone).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, LabSimulator, SEED, DEFAULT_API_KEY, SimExchange } from '../simulator';
import { BenchlingClient } from '../nodes/clients/benchling/client';
import { abortMultipart, PART_SIZE } from '../nodes/clients/benchling/blob-upload';
import { loadBenchlingContract, skipReason, formatViolations, BenchlingContract, Violation } from './support/openapi';
import { tempDir } from './support/nodered';

if (skipReason) console.log(`# client contract: skipped: ${skipReason}`);

describe('Benchling client vs the OpenAPI contract', { skip: skipReason || false }, () => {
  let contract: BenchlingContract;
  let sim: LabSimulator;
  let client: BenchlingClient;
  const exchanges: Array<{ ex: SimExchange; violations: Violation[] }> = [];

  before(async () => {
    contract = loadBenchlingContract()!;
    sim = await startLabSimulator({
      benchling: { rateLimit: false, taskDurationMs: 100, validator: (ex) => exchanges.push({ ex, violations: contract.checkExchange(ex) }) },
    });
    client = new BenchlingClient({ tenantUrl: sim.benchling.url, apiKey: DEFAULT_API_KEY, backoff: { baseMs: 10, maxMs: 50 } });
  });
  after(async () => {
    client?.close();
    await sim?.close();
  });

  test('the whole pipeline, single and multipart, plus abort and paging: zero violations', async () => {
    const dir = tempDir('contract');
    const small = path.join(dir, 'plate.csv');
    fs.writeFileSync(small, 'well,od\nA1,0.5\n');
    const big = path.join(dir, 'big.bin');
    fs.writeFileSync(big, randomBytes(PART_SIZE + 1234));

    const single = await client.uploadFile(small);
    const multi = await client.uploadFile(big);
    assert.equal(multi.parts, 2);
    for (const blob of [single.blob, multi.blob]) {
      const proc = await client.createOutputProcessor({ assayRunId: SEED.runs[0].id, automationFileConfigName: SEED.outputConfigName, fileId: blob.id });
      await client.getOutputProcessor(proc.id);
      const task = await client.waitForTask(await client.processOutput(proc.id), { intervalMs: 30 });
      assert.ok(task.status === 'SUCCEEDED' || task.status === 'FAILED');
    }
    // an upload that is abandoned
    const started = await client.http.request<{ id: string }>({ method: 'POST', path: '/blobs:start-multipart-upload', json: { name: 'x.bin', type: 'RAW_FILE' } });
    assert.equal(await abortMultipart(client.http, started.data.id), true);
    await client.listAssayRuns(SEED.schemaId, { pageSize: 2 });
    // issue 3's calls: schemas, input generation and download, recovery, requests by path
    await client.listAssayRunSchemas();
    const [gen] = await client.listInputGenerators(SEED.runs[1].id);
    const genTask = await client.waitForTask<{ file: { id: string } }>(await client.generateInput(gen.id), { intervalMs: 30 });
    const downloaded = await client.downloadBlob(genTask.response!.file.id);
    assert.ok(downloaded.size > 0);
    const failing = await client.uploadBuffer(Buffer.from('well,od\nA1,1\n'), { name: 'FAIL-contract.csv' });
    const proc = await client.createOutputProcessor({ assayRunId: SEED.runs[1].id, automationFileConfigName: SEED.outputConfigName, fileId: failing.blob.id });
    assert.equal((await client.waitForTask(await client.processOutput(proc.id), { intervalMs: 30 })).status, 'FAILED');
    const fixed = await client.uploadBuffer(Buffer.from('well,od\nA1,1\n'), { name: 'fixed.csv' });
    await client.updateOutputProcessorFile(proc.id, fixed.blob.id);
    await client.archiveOutputProcessors([proc.id]);
    await client.findOutputProcessor(SEED.runs[1].id, SEED.outputConfigName, fixed.blob.id);
    await client.getBlob(fixed.blob.id);

    const paths = new Set(exchanges.map((e) => `${e.ex.method} ${e.ex.path.replace(/[0-9a-f-]{36}|aop_\w+/g, '{id}')}`));
    for (const expected of ['POST /api/v2/blobs', 'POST /api/v2/blobs:start-multipart-upload', 'POST /api/v2/blobs/{id}/parts', 'POST /api/v2/blobs/{id}:complete-upload', 'POST /api/v2/blobs/{id}:abort-upload', 'POST /api/v2/automation-output-processors', 'POST /api/v2/automation-output-processors/{id}:process-output', 'GET /api/v2/tasks/{id}', 'GET /api/v2/assay-runs']) {
      assert.ok(paths.has(expected), `exercised ${expected} (saw ${[...paths].join(', ')})`);
    }
    const bad = exchanges.flatMap((e) => e.violations.map((v) => ({ ...v, exchange: `${e.ex.method} ${e.ex.path} → ${e.ex.status}` })));
    assert.equal(bad.length, 0, formatViolations(bad));
    assert.equal(sim.benchling.validatorErrors.length, 0);
  });
});
