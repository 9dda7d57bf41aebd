/**
 * The typed Benchling client against the lab simulator over real HTTP: single and multipart
 * uploads (the simulator checks every MD5 and part size), file changes mid-upload, bad input,
 * processors and tasks, paging, and recovery from 429 / 503 / resets.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, LabSimulator, SEED, DEFAULT_API_KEY } from '../simulator';
import { BenchlingClient, apiBaseFromTenantUrl } from '../nodes/clients/benchling/client';
import { PART_SIZE, partBody, uploadFile } from '../nodes/clients/benchling/blob-upload';
import type { HttpClient, RequestSpec } from '../nodes/lib/http/client';
import { LabError } from '../nodes/lib/http/errors';
import { tempDir } from './support/nodered';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe('BenchlingClient', () => {
  let sim: LabSimulator;
  let client: BenchlingClient;
  let dir: string;

  before(async () => {
    sim = await startLabSimulator({ benchling: { rateLimit: false, taskDurationMs: 150 } });
    client = new BenchlingClient({ tenantUrl: sim.benchling.url, apiKey: DEFAULT_API_KEY, backoff: { baseMs: 20, maxMs: 100 } });
    dir = tempDir('client');
  });
  after(async () => {
    client.close();
    await sim.close();
  });

  test('tenant URLs: a bare tenant gets /api/v2, a full base is kept, garbage is refused', () => {
    assert.equal(apiBaseFromTenantUrl('https://acme.benchling.com'), 'https://acme.benchling.com/api/v2');
    assert.equal(apiBaseFromTenantUrl('https://acme.benchling.com/api/v2/'), 'https://acme.benchling.com/api/v2');
    assert.throws(() => apiBaseFromTenantUrl('acme.benchling'), /not a valid URL/);
    assert.throws(() => apiBaseFromTenantUrl('ftp://acme.benchling.com'), /must start with https/);
    assert.throws(() => apiBaseFromTenantUrl(''), /not set/);
  });

  test('a small file is a one-part multipart upload with the right MD5, its id told before any part', async () => {
    const file = path.join(dir, 'plate1.csv');
    fs.writeFileSync(file, 'well,od\nA1,0.12\nA2,0.34\n');
    let startedWith: { id: string; parts: number } | undefined;
    const r = await client.uploadFile(file, { onMultipartStarted: (id) => (startedWith = { id, parts: sim.benchling.getBlob(id)!.parts.length }) });
    assert.deepEqual(startedWith, { id: r.blob.id, parts: 0 });
    assert.equal(r.parts, 1);
    const blob = sim.benchling.getBlob(r.blob.id)!;
    assert.equal(blob.uploadStatus, 'COMPLETE');
    assert.equal(blob.md5, md5(fs.readFileSync(file)));
    assert.equal(blob.mimeType, 'text/csv');
    assert.equal(blob.multipart, true);
  });

  test('a file over 10 MB goes in streamed parts; the simulator verifies each part and the whole', async () => {
    const file = path.join(dir, 'big.bin');
    const bytes = randomBytes(PART_SIZE + 3_000_001);
    fs.writeFileSync(file, bytes);
    const progress: number[] = [];
    const r = await client.uploadFile(file, { onProgress: (sent) => progress.push(sent) });
    assert.equal(r.parts, 2);
    const blob = sim.benchling.getBlob(r.blob.id)!;
    assert.equal(blob.uploadStatus, 'COMPLETE');
    assert.equal(blob.multipart, true);
    assert.equal(blob.size, bytes.length);
    assert.equal(blob.md5, md5(bytes));
    assert.deepEqual(blob.parts.map((p) => p.size), [PART_SIZE, 3_000_001]);
    // Parts go in parallel: either may be answered first.
    assert.equal(progress.length, 3);
    assert.equal(progress[0], 0);
    assert.ok([PART_SIZE, 3_000_001].includes(progress[1]), String(progress));
    assert.equal(progress[2], bytes.length);
  });

  test('parts in parallel: while one part hangs the others arrive; cancelled with parts in flight, the upload is kept and resumed to the right blob', async () => {
    const file = path.join(dir, 'parallel.bin');
    const bytes = randomBytes(PART_SIZE * 2 + 1_000_003);
    fs.writeFileSync(file, bytes);
    const st = fs.statSync(file);
    // The first part request to arrive is never answered.
    sim.benchling.injectFault({ kind: 'hang', method: 'POST', path: /\/parts$/ });
    const cancel = new AbortController();
    let blobId = '';
    let partsWhenStarted = -1;
    const aborted: string[] = [];
    const upload = client.uploadFile(file, {
      partsInParallel: 3,
      signal: cancel.signal,
      onMultipartStarted: (id) => {
        blobId = id;
        partsWhenStarted = sim.benchling.getBlob(id)!.parts.length;
      },
      onMultipartAborted: (id) => aborted.push(id),
    });
    const outcome = upload.then(
      () => 'completed',
      (err: LabError) => err.code,
    );
    // Sent one at a time, nothing would follow the hung part: both others arriving proves parallel parts.
    const deadline = Date.now() + 60_000;
    while (!(blobId && sim.benchling.getBlob(blobId)!.parts.length >= 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(sim.benchling.getBlob(blobId)!.parts.length, 2, 'the two parts not hung were stored');
    assert.equal(partsWhenStarted, 0, 'the blob id was told before any part was sent');
    cancel.abort();
    assert.equal(await outcome, 'CANCELLED');
    assert.equal(sim.benchling.getBlob(blobId)!.uploadStatus, 'IN_PROGRESS', 'a cancelled upload is kept for the re-send');
    assert.deepEqual(aborted, []);

    // The re-send (as after a crash) finishes the same blob; a part failing on the way is retried.
    sim.benchling.injectFault({ kind: '500', method: 'POST', path: /\/parts$/ });
    const r = await client.uploadFile(file, { partsInParallel: 3, resume: { blobId, size: st.size, mtimeMs: st.mtimeMs } });
    assert.equal(r.resumed, true);
    assert.equal(r.blob.id, blobId);
    const blob = sim.benchling.getBlob(blobId)!;
    assert.equal(blob.uploadStatus, 'COMPLETE');
    assert.equal(blob.md5, md5(bytes));
    assert.equal(blob.size, bytes.length);
    assert.deepEqual(blob.parts.map((p) => p.size), [PART_SIZE, PART_SIZE, 1_000_003]);
  });

  test('a part body read as a plain stream (not piped into a request) is the same JSON, its length exact', async () => {
    const file = path.join(dir, 'plain-stream.bin');
    const bytes = randomBytes(1_234_567);
    fs.writeFileSync(file, bytes);
    const start = 1001;
    const length = 1_000_000;
    const body = partBody(file, 7, start, length);
    const chunks: Buffer[] = [];
    for await (const c of body.stream) chunks.push(Buffer.from(c as Buffer | string));
    const text = Buffer.concat(chunks).toString('latin1');
    assert.equal(text.length, body.length);
    const part = bytes.subarray(start, start + length);
    assert.deepEqual(JSON.parse(text), { partNumber: 7, data64: part.toString('base64'), md5: md5(part) });
  });

  test('parts in parallel, one at a time and many at once all store the same bytes, a reset part retried', async () => {
    const file = path.join(dir, 'parallel-settings.bin');
    const bytes = randomBytes(PART_SIZE * 3 + 7);
    fs.writeFileSync(file, bytes);
    for (const partsInParallel of [1, 2, 8]) {
      // A part whose connection is reset is sent again in the same buffers as the body it replaces.
      const resets = sim.benchling.counters.faults.reset;
      sim.benchling.injectFault({ kind: 'reset', method: 'POST', path: /\/parts$/ });
      const r = await client.uploadFile(file, { partsInParallel });
      assert.equal(sim.benchling.counters.faults.reset, resets + 1, 'one part was reset');
      const blob = sim.benchling.getBlob(r.blob.id)!;
      assert.equal(r.parts, 4);
      assert.equal(blob.uploadStatus, 'COMPLETE', `${partsInParallel} at once`);
      assert.equal(blob.md5, md5(bytes), `${partsInParallel} at once`);
      assert.deepEqual(blob.parts.map((p) => p.partNumber), [1, 2, 3, 4]);
    }
  });

  test('a file that changes during a multipart upload is not completed, and the upload is aborted', async () => {
    const file = path.join(dir, 'growing.bin');
    fs.writeFileSync(file, randomBytes(PART_SIZE * 2 + 100));
    let blobId = '';
    await assert.rejects(
      client.uploadFile(file, {
        onMultipartStarted: (id) => (blobId = id),
        onProgress: (sent, total) => {
          // Once, after the first part is answered (parts go in parallel: any may be first).
          if (sent > 0 && sent < total && fs.statSync(file).size === total) fs.appendFileSync(file, 'more data from the instrument');
        },
      }),
      (err: LabError) => err.code === 'BAD_INPUT' && /changed while it was being uploaded/.test(err.message),
    );
    assert.equal(sim.benchling.getBlob(blobId)!.uploadStatus, 'ABORTED');
  });

  test('empty, missing and non-regular files are refused with clear messages', async () => {
    const empty = path.join(dir, 'empty.csv');
    fs.writeFileSync(empty, '');
    await assert.rejects(client.uploadFile(empty), /is empty \(0 bytes\)/);
    await assert.rejects(client.uploadFile(path.join(dir, 'gone.csv')), /no longer exists/);
    await assert.rejects(client.uploadFile(dir), /not a regular file/);
  });

  test('a wrong API key gives 401 with advice, and the key is not in the message', async () => {
    const bad = new BenchlingClient({ tenantUrl: sim.benchling.url, apiKey: 'sk_wrong_FAKE_key_123', backoff: { baseMs: 10, maxMs: 20 } });
    await assert.rejects(bad.getTask('00000000-0000-4000-8000-000000000000'), (err: LabError) => {
      assert.equal(err.status, 401);
      assert.match(err.message, /check the credentials/);
      assert.ok(!err.message.includes('sk_wrong_FAKE_key_123'));
      return true;
    });
    bad.close();
  });

  test('processor: create, process, follow the task to SUCCEEDED', async () => {
    const file = path.join(dir, 'results.csv');
    fs.writeFileSync(file, 'well,od\nA1,0.1\nA2,0.2\nA3,0.3\n');
    const { blob } = await client.uploadFile(file);
    const proc = await client.createOutputProcessor({ assayRunId: SEED.runs[0].id, automationFileConfigName: SEED.outputConfigName, fileId: blob.id });
    assert.match(proc.id, /^aop_/);
    const taskId = await client.processOutput(proc.id);
    const polls: number[] = [];
    const task = await client.waitForTask<{ status: string; progressStats: { rowsSucceeded: number } }>(taskId, {
      intervalMs: 50,
      onPoll: ({ attempt }) => polls.push(attempt),
    });
    assert.equal(task.status, 'SUCCEEDED');
    assert.equal(task.response!.progressStats.rowsSucceeded, 3);
    assert.ok(polls.length >= 2, 'the task was RUNNING first');
  });

  test('a file the simulator is told to fail ends FAILED with a message', async () => {
    const { blob } = await client.uploadBuffer(Buffer.from('well,od\n#FAIL bad plate\n'), { name: 'bad.csv' });
    const proc = await client.createOutputProcessor({ assayRunId: SEED.runs[1].id, automationFileConfigName: SEED.outputConfigName, fileId: blob.id });
    const task = await client.waitForTask(await client.processOutput(proc.id), { intervalMs: 50 });
    assert.equal(task.status, 'FAILED');
    assert.ok(task.message && task.message.length > 0);
  });

  test('Benchling error bodies become readable messages (unknown run)', async () => {
    const { blob } = await client.uploadBuffer(Buffer.from('a,b\n1,2\n'), { name: 'x.csv' });
    await assert.rejects(
      client.createOutputProcessor({ assayRunId: 'no-such-run', automationFileConfigName: SEED.outputConfigName, fileId: blob.id }),
      (err: LabError) => err.status === 400 && /Benchling POST \/automation-output-processors failed: HTTP 400: .+\(invalid_request_error\)/.test(err.message),
    );
  });

  test('assay runs: every page is followed', async () => {
    const schemaId = 'assaysch_paging1';
    for (let i = 0; i < 120; i++) sim.benchling.addAssayRun({ schemaId, schemaName: 'Paging' });
    const runs = await client.listAssayRuns(schemaId, { pageSize: 50 });
    assert.equal(runs.length, 120);
    assert.equal(new Set(runs.map((r) => r.id)).size, 120);
  });

  test('recovers from 429, 503 and a reset on idempotent parts without losing the upload', async () => {
    sim.benchling.injectFault({ kind: '429', times: 2 });
    sim.benchling.injectFault({ kind: '503', times: 1 });
    sim.benchling.injectFault({ kind: 'reset', times: 1, path: /\/parts$/ });
    const file = path.join(dir, 'flaky.bin');
    const bytes = randomBytes(PART_SIZE + 10);
    fs.writeFileSync(file, bytes);
    const r = await client.uploadFile(file);
    const blob = sim.benchling.getBlob(r.blob.id)!;
    assert.equal(blob.md5, md5(bytes));
    assert.ok(sim.benchling.counters.faults['429'] >= 2 && sim.benchling.counters.faults.reset >= 1);
  });

  /** An HttpClient stand-in that answers from a script and logs every call (method and path). */
  function scripted(answer: (spec: RequestSpec) => unknown): { http: HttpClient; calls: string[] } {
    const calls: string[] = [];
    const http = {
      async request(spec: RequestSpec) {
        calls.push(`${spec.method} ${spec.path}`);
        const body = spec.body?.();
        if (body) for await (const _ of body.stream) void _; // consume the streamed part
        const a = answer(spec);
        if (a instanceof Error) throw a;
        return { status: 200, data: a, headers: {} };
      },
    } as unknown as HttpClient;
    return { http, calls };
  }
  const http400 = () => new LabError('HTTP', 'http.status', { what: 'x', status: 400, detail: 'no longer accepting changes' }, { status: 400 });
  const reset = () => new LabError('NETWORK', 'http.status', { what: 'x', status: 0, detail: 'ECONNRESET' });

  test('a recorded upload whose part Benchling refuses is aborted and replaced; the new id is told before its part', async () => {
    const file = path.join(dir, 'refused-part.csv');
    fs.writeFileSync(file, 'well,od\nA1,1\n');
    const st = fs.statSync(file);
    const events: string[] = [];
    const { http, calls } = scripted((spec) => {
      if (spec.method === 'GET') return { id: 'old', uploadStatus: 'IN_PROGRESS' };
      if (spec.path === '/blobs/old/parts') return http400();
      if (spec.path.endsWith(':abort-upload')) return {};
      if (spec.path === '/blobs:start-multipart-upload') return { id: 'new', uploadStatus: 'IN_PROGRESS' };
      if (spec.path.endsWith('/parts')) return { partNumber: 1, eTag: '"e"' };
      return { id: 'new', uploadStatus: 'COMPLETE' };
    });
    const r = await uploadFile(http, file, {
      resume: { blobId: 'old', size: st.size, mtimeMs: st.mtimeMs },
      onMultipartStarted: (id) => events.push(`started ${id} after ${calls.length} calls`),
      onMultipartAborted: (id) => events.push(`aborted ${id}`),
    });
    assert.equal(r.blob.id, 'new');
    assert.deepEqual(calls, [
      'GET /blobs/old',
      'POST /blobs/old/parts',
      'POST /blobs/old:abort-upload',
      'POST /blobs:start-multipart-upload',
      'POST /blobs/new/parts',
      'POST /blobs/new:complete-upload',
    ]);
    assert.deepEqual(events, ['aborted old', 'started new after 4 calls']);
  });

  test('a transient failure keeps the started upload (no abort); a 4xx aborts it', async () => {
    const file = path.join(dir, 'transient.csv');
    fs.writeFileSync(file, 'well,od\nA1,1\n');
    for (const [failure, aborts] of [[reset, false], [http400, true]] as const) {
      const { http, calls } = scripted((spec) => {
        if (spec.path === '/blobs:start-multipart-upload') return { id: 'b1', uploadStatus: 'IN_PROGRESS' };
        if (spec.path.endsWith('/parts')) return { partNumber: 1, eTag: '"e"' };
        if (spec.path.endsWith(':complete-upload')) return failure();
        return {};
      });
      const aborted: string[] = [];
      await assert.rejects(uploadFile(http, file, { onMultipartAborted: (id) => aborted.push(id) }));
      assert.equal(calls.includes('POST /blobs/b1:abort-upload'), aborts, `${failure().code}: ${calls}`);
      assert.deepEqual(aborted, aborts ? ['b1'] : []);
    }
  });

  test('a recorded upload found COMPLETE (the completion\'s answer was lost) is used as it is', async () => {
    const file = path.join(dir, 'found-complete.csv');
    fs.writeFileSync(file, 'well,od\nA1,1\n');
    const st = fs.statSync(file);
    const { http, calls } = scripted(() => ({ id: 'done', name: 'found-complete.csv', type: 'RAW_FILE', uploadStatus: 'COMPLETE' }));
    const r = await uploadFile(http, file, { resume: { blobId: 'done', size: st.size, mtimeMs: st.mtimeMs } });
    assert.equal(r.blob.id, 'done');
    assert.equal(r.resumed, true);
    assert.deepEqual(calls, ['GET /blobs/done']);
  });
});
