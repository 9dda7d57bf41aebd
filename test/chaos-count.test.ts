/**
 * The chaos harness counts right: a made-up lab state (built through the simulator's API, with
 * files and a watcher ledger written by hand, no Node-RED) gives exactly the expected figures.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'fs';
import * as path from 'path';
import { SEED } from '../simulator';
import { blobsNotInJournals, ChaosLab, countFromSimulator, exampleFlow, mergeOverrides, parseSetting, SIM_FAIL_TEXT, BASE_OVERRIDES } from '../scripts/chaos-lib';

describe('chaos harness: counting from the simulator', () => {
  const lab = new ChaosLab({ name: 'count', benchling: { rateLimit: false, taskDurationMs: 50 }, overrides: {} });
  before(() => lab.startSimulator());
  after(() => lab.close());

  async function api(method: string, p: string, body?: unknown): Promise<Record<string, unknown>> {
    const r = await fetch(lab.benchling.apiBase + p, {
      method,
      headers: { authorization: lab.benchling.authHeader(), 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    assert.ok(r.ok, `${method} ${p}: ${r.status}`);
    return (await r.json()) as Record<string, unknown>;
  }
  async function blob(name: string): Promise<string> {
    const data = Buffer.from(`well,od\nA1,0.1\n# ${name}\n`);
    const b = await api('POST', '/blobs', { name, type: 'RAW_FILE', mimeType: 'text/csv', data64: data.toString('base64'), md5: crypto.createHash('md5').update(data).digest('hex') });
    return String(b.id);
  }
  async function processed(fileId: string): Promise<string> {
    const p = await api('POST', '/automation-output-processors', { assayRunId: SEED.runs[0].id, automationFileConfigName: SEED.outputConfigName, fileId });
    const { taskId } = await api('POST', `/automation-output-processors/${p.id}:process-output`);
    for (let i = 0; i < 100; i++) {
      if ((await api('GET', `/tasks/${taskId}`)).status !== 'RUNNING') return String(p.id);
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('task did not finish');
  }

  test('succeeded, archived, duplicates, orphan and unfinished blobs, FAIL files, journals', async () => {
    fs.mkdirSync(lab.archive, { recursive: true });
    // a.csv: done and archived. b.csv: two processors (a duplicate), still in the folder.
    const a = await blob('a.csv');
    await processed(a);
    fs.writeFileSync(path.join(lab.archive, 'a.csv'), 'x');
    await processed(await blob('b.csv'));
    await processed(await blob('b.csv'));
    lab.writeFile('b.csv');
    // c.csv: archived, but only an orphan blob (no processor) and an unfinished multipart upload.
    const orphan = await blob('c.csv');
    await api('POST', '/blobs:start-multipart-upload', { name: 'c.csv', type: 'RAW_FILE', mimeType: 'text/csv' });
    fs.writeFileSync(path.join(lab.archive, 'c.csv'), 'x');
    // FAIL-1.csv: dead-lettered with the reason. FAIL-2.csv: processed twice, ledger without the reason.
    await processed(await blob('FAIL-1.csv'));
    await processed(await blob('FAIL-2.csv'));
    await processed(await blob('FAIL-2.csv'));
    // FAIL-3.csv: the task's answer was lost, so the dead-letter names the FAILED processor: counts.
    // FAIL-4.csv: TASK_FAILED naming no processor of its own: does not count.
    const fail3 = await processed(await blob('FAIL-3.csv'));
    await processed(await blob('FAIL-4.csv'));
    for (const f of ['FAIL-1.csv', 'FAIL-2.csv', 'FAIL-3.csv', 'FAIL-4.csv']) lab.writeFile(f);
    const state = path.join(lab.userDir, 'labwire-state');
    fs.mkdirSync(state, { recursive: true });
    fs.writeFileSync(
      path.join(state, 'watch-folder-n1.jsonl'),
      [
        { k: 'FAIL-1.csv', v: { state: 'emitted' } },
        { k: 'FAIL-1.csv', v: { state: 'failed', error: `${SIM_FAIL_TEXT}: file name "FAIL-1.csv" contains FAIL.` } },
        { k: 'FAIL-2.csv', v: { state: 'failed', error: 'reported as failed' } },
        { k: 'FAIL-3.csv', v: { state: 'failed', failure: { code: 'TASK_FAILED', message: `processing FAILED in output processor ${fail3} (…)` } } },
        { k: 'FAIL-4.csv', v: { state: 'failed', failure: { code: 'TASK_FAILED', message: 'processing FAILED in output processor aop_other' } } },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n') + '\n{"k":"FAIL-2.csv","v":{"sta', // a torn last line is ignored
    );
    fs.writeFileSync(path.join(state, 'benchling-upload-blob-n2.jsonl'), JSON.stringify({ k: 'x', v: { blobId: a } }) + '\n');

    const f = countFromSimulator(lab, ['a.csv', 'b.csv', 'c.csv'], ['FAIL-1.csv', 'FAIL-2.csv', 'FAIL-3.csv', 'FAIL-4.csv']);
    assert.equal(f.files, 3);
    assert.equal(f.succeeded, 2); // a, b
    assert.equal(f.archived, 2); // a, c
    assert.equal(f.archivedWithoutSuccess, 1); // c
    assert.equal(f.leftInFolder, 1); // b
    assert.equal(f.duplicateProcessors, 2); // b, FAIL-2
    assert.equal(f.filesWithDuplicates, 2);
    assert.equal(f.blobsWithoutProcessor, 1);
    assert.equal(f.blobsInProgress, 1);
    assert.equal(f.failRetried, 1);
    assert.equal(f.failDeadLettered, 2);
    assert.equal(f.failProcessorNamed, 1);
    assert.deepEqual(
      f.failFiles.map((x) => [x.file, x.processors, x.statuses.join('+'), x.reasonRecorded, x.reasonKind, x.where]),
      [
        ['FAIL-1.csv', 1, 'FAILED', true, 'message', 'in place'],
        ['FAIL-2.csv', 2, 'FAILED+FAILED', false, 'none', 'in place'],
        ['FAIL-3.csv', 1, 'FAILED', true, 'processor', 'in place'],
        ['FAIL-4.csv', 1, 'FAILED', false, 'none', 'in place'],
      ],
    );
    assert.deepEqual(f.tasks, { SUCCEEDED: 3, FAILED: 5 });
    const notJournaled = blobsNotInJournals(lab, ['a.csv', 'c.csv']);
    assert.equal(notJournaled.length, 2); // c's orphan and its unfinished upload; a's is in a journal
    assert.ok(notJournaled.includes(orphan));
  });

  test('node overrides: per type, later layers win, the tenant gets the key as a credential', () => {
    const o = mergeOverrides(BASE_OVERRIDES, parseSetting('lab-watch-folder.retryBaseSec=1'), parseSetting('lab-watch-folder.stability=0.2'), parseSetting('benchling-tenant.name=x y'));
    const flow = exampleFlow(o, 'sk_test');
    const watcher = flow.find((n) => n.type === 'lab-watch-folder')!;
    assert.equal(watcher.retryBaseSec, 1);
    assert.equal(watcher.stability, 0.2);
    assert.equal(watcher.rescanInterval, 2);
    const tenant = flow.find((n) => n.type === 'benchling-tenant')!;
    assert.equal(tenant.name, 'x y');
    assert.deepEqual(tenant.credentials, { apiKey: 'sk_test' });
  });
});
