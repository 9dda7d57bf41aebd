// Benchling simulator behaviour over real HTTP on 127.0.0.1 (random ports, no mocks).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { startLabSimulator, spreadFaults, FAULT_KINDS, SEED, type LabSimulator, type BenchlingSim } from '../simulator';

const md5 = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Res {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

async function call(
  sim: BenchlingSim,
  method: string,
  path: string,
  body?: unknown,
  opts: { auth?: string | null; signal?: AbortSignal; raw?: string } = {},
): Promise<Res> {
  const headers: Record<string, string> = {};
  const auth = opts.auth === undefined ? sim.authHeader() : opts.auth;
  if (auth) headers.authorization = auth;
  let payload: string | undefined;
  if (opts.raw !== undefined) payload = opts.raw;
  else if (body !== undefined) payload = JSON.stringify(body);
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path.startsWith('http') ? path : sim.apiBase + path, { method, headers, body: payload, signal: opts.signal });
  const text = await r.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: r.status, headers: r.headers, body: parsed, text };
}

function blobBody(name: string, data: Buffer, extra: Record<string, unknown> = {}) {
  return { name, type: 'RAW_FILE', data64: data.toString('base64'), md5: md5(data), mimeType: 'text/csv', ...extra };
}

async function uploadSmall(sim: BenchlingSim, name: string, content: string): Promise<string> {
  const r = await call(sim, 'POST', '/blobs', blobBody(name, Buffer.from(content)));
  assert.equal(r.status, 200, r.text);
  return r.body.id;
}

async function waitTask(sim: BenchlingSim, taskId: string, timeoutMs = 5000): Promise<Res> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await call(sim, 'GET', `/tasks/${taskId}`);
    assert.equal(r.status, 200, r.text);
    if (r.body.status !== 'RUNNING') return r;
    if (Date.now() > end) throw new Error('task still RUNNING');
    await sleep(50);
  }
}

function filled(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4096) b.fill((seed + i / 4096) & 0xff, i, Math.min(size, i + 4096));
  return b;
}

const RUN1: string = SEED.runs[0].id;
const CSV = 'Well,OD450\nA1,0.12\nA2,0.34\nA3,0.56\n';

describe('benchling simulator', () => {
  let lab: LabSimulator;
  let sim: BenchlingSim;

  before(async () => {
    lab = await startLabSimulator({ benchling: { rateLimit: false, taskDurationMs: 150, downloadUrlTtlSec: 1 } });
    sim = lab.benchling;
  });
  after(async () => {
    await lab.close();
  });

  test('url and apiBase', () => {
    assert.match(sim.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(sim.apiBase, sim.url + '/api/v2');
  });

  describe('single-part blobs', () => {
    test('md5 ok → 200 COMPLETE, md5/size recorded', async () => {
      const data = Buffer.from('hello');
      const r = await call(sim, 'POST', '/blobs', { name: 'hello.txt', type: 'RAW_FILE', data64: 'aGVsbG8=', md5: '5d41402abc4b2a76b9719d911017c592', mimeType: 'text/plain' });
      assert.equal(r.status, 200);
      assert.deepEqual(Object.keys(r.body).sort(), ['id', 'mimeType', 'name', 'type', 'uploadStatus']);
      assert.equal(r.body.uploadStatus, 'COMPLETE');
      assert.match(r.body.id, /^[0-9a-f-]{36}$/);
      const info = sim.getBlob(r.body.id)!;
      assert.equal(info.md5, md5(data));
      assert.equal(info.size, 5);
      assert.equal(info.inMemory, true);
      assert.deepEqual(await sim.readBlob(r.body.id), data);
      const g = await call(sim, 'GET', `/blobs/${r.body.id}`);
      assert.equal(g.status, 200);
      assert.deepEqual(g.body, r.body);
    });

    test('mimeType defaults to application/octet-stream', async () => {
      const r = await call(sim, 'POST', '/blobs', { name: 'x', type: 'VISUALIZATION', data64: 'aGVsbG8=', md5: '5d41402abc4b2a76b9719d911017c592' });
      assert.equal(r.status, 200);
      assert.equal(r.body.mimeType, 'application/octet-stream');
    });

    test('md5 mismatch → 400 with a clear message, nothing stored', async () => {
      const before = sim.listBlobs().length;
      const r = await call(sim, 'POST', '/blobs', blobBody('a.csv', Buffer.from('abc'), { md5: md5(Buffer.from('aGVsbG8=')) }));
      assert.equal(r.status, 400);
      assert.equal(r.body.error.type, 'invalid_request_error');
      assert.match(r.body.error.message, /md5 mismatch/);
      assert.match(r.body.error.message, /raw bytes/);
      assert.equal(sim.listBlobs().length, before);
    });

    test('extra property, bad enum, missing field, bad base64, bad JSON → 400', async () => {
      const ok = blobBody('a.csv', Buffer.from('abc'));
      let r = await call(sim, 'POST', '/blobs', { ...ok, folderId: 'lib_x' });
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /Unrecognized field "folderId"/);
      r = await call(sim, 'POST', '/blobs', { ...ok, type: 'PDF' });
      assert.equal(r.status, 400);
      const { md5: _m, ...noMd5 } = ok;
      r = await call(sim, 'POST', '/blobs', noMd5);
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /md5/);
      r = await call(sim, 'POST', '/blobs', { ...ok, data64: '***' });
      assert.equal(r.status, 400);
      r = await call(sim, 'POST', '/blobs', undefined, { raw: '{"name":' });
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /not valid JSON/);
    });

    test('MIME-wrapped base64 (newline every 76 chars) is accepted', async () => {
      const data = filled(300, 7);
      const wrapped = data.toString('base64').replace(/(.{76})/g, '$1\n');
      const r = await call(sim, 'POST', '/blobs', { name: 'w.bin', type: 'RAW_FILE', data64: wrapped, md5: md5(data) });
      assert.equal(r.status, 200, r.text);
    });

    test('decoded size > 10,000,000 bytes → 400; exactly 10,000,000 → 200', async () => {
      const big = filled(10_000_001, 1);
      let r = await call(sim, 'POST', '/blobs', blobBody('big.bin', big));
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /multipart/);
      const edge = big.subarray(0, 10_000_000);
      r = await call(sim, 'POST', '/blobs', blobBody('edge.bin', edge));
      assert.equal(r.status, 200, r.text);
      assert.equal(sim.getBlob(r.body.id)!.size, 10_000_000);
    });

    test('unknown blob → 404 NotFoundError with invalidId', async () => {
      const r = await call(sim, 'GET', '/blobs/00000000-0000-4000-8000-000000000000');
      assert.equal(r.status, 404);
      assert.equal(r.body.error.invalidId, '00000000-0000-4000-8000-000000000000');
      assert.equal(r.body.error.type, 'invalid_request_error');
    });
  });

  describe('multipart blobs', () => {
    async function start(name = 'big.bin') {
      const r = await call(sim, 'POST', '/blobs:start-multipart-upload', { name, type: 'RAW_FILE', mimeType: 'application/octet-stream' });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.uploadStatus, 'IN_PROGRESS');
      return r.body.id as string;
    }
    async function part(id: string, partNumber: number, data: Buffer, md5sum = md5(data)) {
      return call(sim, 'POST', `/blobs/${id}/parts`, { partNumber, data64: data.toString('base64'), md5: md5sum });
    }

    test('happy path with real 5.3 MB parts: md5/size of the whole blob, download streams it back', async () => {
      const id = await start();
      const p1 = filled(5_300_000, 11);
      const p2 = filled(5_300_000, 22);
      const p3 = filled(1_234_567, 33);
      const etags = [];
      for (const [n, d] of [[1, p1], [2, p2], [3, p3]] as const) {
        const r = await part(id, n, d);
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.body, { partNumber: n, eTag: `"${md5(d)}"` });
        etags.push(r.body);
      }
      assert.equal(sim.getBlob(id)!.parts.length, 3);
      const c = await call(sim, 'POST', `/blobs/${id}:complete-upload`, { parts: etags });
      assert.equal(c.status, 200, c.text);
      assert.equal(c.body.uploadStatus, 'COMPLETE');
      const whole = Buffer.concat([p1, p2, p3]);
      const info = sim.getBlob(id)!;
      assert.equal(info.md5, md5(whole));
      assert.equal(info.size, whole.length);
      assert.equal(info.inMemory, false);
      const u = await call(sim, 'GET', `/blobs/${id}/download-url`);
      assert.equal(u.status, 200);
      const d = await fetch(u.body.downloadURL);
      assert.equal(d.status, 200);
      const got = Buffer.from(await d.arrayBuffer());
      assert.equal(got.length, whole.length);
      assert.equal(md5(got), md5(whole));
    });

    test('part-size rules: non-last part below 5 MiB, part above 10,000,000 → 400', async () => {
      let id = await start();
      const small = filled(5_242_879, 1);
      const r1 = await part(id, 1, small);
      const r2 = await part(id, 2, filled(100, 2));
      let c = await call(sim, 'POST', `/blobs/${id}:complete-upload`, { parts: [r1.body, r2.body] });
      assert.equal(c.status, 400);
      assert.match(c.body.error.message, /at least 5242880/);
      assert.equal(sim.getBlob(id)!.uploadStatus, 'IN_PROGRESS');
      // exactly 5 MiB is fine
      const r1b = await part(id, 1, filled(5_242_880, 1));
      c = await call(sim, 'POST', `/blobs/${id}:complete-upload`, { parts: [r1b.body, r2.body] });
      assert.equal(c.status, 200, c.text);

      id = await start();
      const tooBig = await part(id, 1, filled(10_000_001, 3));
      assert.equal(tooBig.status, 200);
      c = await call(sim, 'POST', `/blobs/${id}:complete-upload`, { parts: [tooBig.body] });
      assert.equal(c.status, 400);
      assert.match(c.body.error.message, /at most 10000000/);
    });

    test('part md5 mismatch and bad partNumber → 400', async () => {
      const id = await start();
      let r = await part(id, 1, filled(1000, 1), md5(Buffer.from('x')));
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /md5 mismatch for part 1/);
      r = await part(id, 0, filled(10, 1));
      assert.equal(r.status, 400);
      r = await part(id, 10001, filled(10, 1));
      assert.equal(r.status, 400);
      assert.equal(sim.getBlob(id)!.parts.length, 0);
    });

    test('eTag mismatch, unknown part, unordered list → 400', async () => {
      const id = await start();
      const a = await part(id, 1, filled(5_300_000, 5));
      const b = await part(id, 2, filled(10, 6));
      let c = await call(sim, 'POST', `/blobs/${id}:complete-upload`, { parts: [a.body, { partNumber: 2, eTag: md5(filled(10, 6)) }] });
      assert.equal(c.status, 400);
      assert.match(c.body.error.message, /eTag mismatch for part 2/);
      c = await call(sim, 'POST', `/blobs/${id}:complete-upload`, { parts: [a.body, { partNumber: 3, eTag: b.body.eTag }] });
      assert.equal(c.status, 400);
      assert.match(c.body.error.message, /never uploaded/);
      c = await call(sim, 'POST', `/blobs/${id}:complete-upload`, { parts: [b.body, a.body] });
      assert.equal(c.status, 400);
      assert.match(c.body.error.message, /ascending/);
      c = await call(sim, 'POST', `/blobs/${id}:complete-upload`, { parts: [a.body, b.body] });
      assert.equal(c.status, 200, c.text);
      // completed: no more parts
      const late = await part(id, 3, filled(10, 1));
      assert.equal(late.status, 400);
    });

    test('abort → 200 {} and ABORTED; parts rejected afterwards; part files removed', async () => {
      const id = await start();
      await part(id, 1, filled(1000, 1));
      const r = await call(sim, 'POST', `/blobs/${id}:abort-upload`, {});
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, {});
      assert.equal(sim.getBlob(id)!.uploadStatus, 'ABORTED');
      assert.equal(sim.getBlob(id)!.parts.length, 0);
      const p = await part(id, 2, filled(1000, 1));
      assert.equal(p.status, 400);
      const c = await call(sim, 'POST', `/blobs/${id}:complete-upload`, { parts: [] });
      assert.equal(c.status, 400);
      const g = await call(sim, 'GET', `/blobs/${id}`);
      assert.equal(g.body.uploadStatus, 'ABORTED');
    });

    test('start-multipart rejects extra properties; parts on unknown blob → 400', async () => {
      let r = await call(sim, 'POST', '/blobs:start-multipart-upload', { name: 'x', type: 'RAW_FILE', data64: 'AA==' });
      assert.equal(r.status, 400);
      r = await call(sim, 'POST', '/blobs/nope/parts', { partNumber: 1, data64: 'AA==', md5: md5(Buffer.from([0])) });
      assert.equal(r.status, 400);
      assert.equal(r.body.error.invalidId, 'nope');
    });
  });

  describe('auth', () => {
    test('missing / wrong key / non-empty password → 401 authentication_error', async () => {
      for (const auth of [null, 'Basic ' + Buffer.from('sk_wrong:').toString('base64'), 'Basic ' + Buffer.from(`${sim.apiKeys[0]}:pw`).toString('base64'), 'Token abc']) {
        const r = await call(sim, 'GET', `/assay-runs/${RUN1}`, undefined, { auth });
        assert.equal(r.status, 401, String(auth));
        assert.equal(r.body.error.type, 'authentication_error');
        assert.equal(typeof r.body.error.message, 'string');
        assert.equal(typeof r.body.error.userMessage, 'string');
      }
    });

    test('issued bearer tokens are accepted, unknown ones are not', async () => {
      const t = sim.issueToken();
      assert.equal(t.token_type, 'Bearer');
      let r = await call(sim, 'GET', `/assay-runs/${RUN1}`, undefined, { auth: `Bearer ${t.access_token}` });
      assert.equal(r.status, 200);
      r = await call(sim, 'GET', `/assay-runs/${RUN1}`, undefined, { auth: 'Bearer nope' });
      assert.equal(r.status, 401);
      sim.revokeToken(t.access_token);
      r = await call(sim, 'GET', `/assay-runs/${RUN1}`, undefined, { auth: `Bearer ${t.access_token}` });
      assert.equal(r.status, 401);
    });
  });

  describe('routes', () => {
    test('unknown route → 404 Benchling error; wrong method → 405', async () => {
      let r = await call(sim, 'GET', '/nothing-here');
      assert.equal(r.status, 404);
      assert.equal(r.body.error.type, 'invalid_request_error');
      r = await call(sim, 'POST', '/automation-output-processors/aop_x:process');
      assert.equal(r.status, 404);
      r = await call(sim, 'DELETE', '/blobs');
      assert.equal(r.status, 405);
      assert.equal(r.headers.get('allow'), 'POST');
      assert.ok(r.body.error.message);
    });
  });

  describe('assay runs', () => {
    test('seeded schema and runs', async () => {
      const r = await call(sim, 'GET', `/assay-runs?schemaId=${SEED.schemaId}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.nextToken, '');
      const ids = r.body.assayRuns.map((x: { id: string }) => x.id);
      for (const s of SEED.runs) assert.ok(ids.includes(s.id));
      const one = await call(sim, 'GET', `/assay-runs/${RUN1}`);
      assert.equal(one.body.entryId, SEED.runs[0].entryId);
      assert.deepEqual(one.body.schema, { id: SEED.schemaId, name: 'Plate Reader Run' });
      assert.equal(one.body.validationStatus, 'VALID');
    });

    test('nextToken paging, "" on the last page; schemaId required; bad token → 400', async () => {
      const schemaId = 'assaysch_pagingTest';
      const added = [];
      for (let i = 0; i < 5; i++) added.push(sim.addAssayRun({ schemaId, createdAt: Date.parse('2026-02-01T00:00:00Z') + i * 1000 }));
      const seen: string[] = [];
      let token = '';
      let pages = 0;
      do {
        const r = await call(sim, 'GET', `/assay-runs?schemaId=${schemaId}&pageSize=2${token ? `&nextToken=${encodeURIComponent(token)}` : ''}`);
        assert.equal(r.status, 200, r.text);
        assert.ok(r.body.assayRuns.length <= 2);
        seen.push(...r.body.assayRuns.map((x: { id: string }) => x.id));
        token = r.body.nextToken;
        assert.equal(typeof token, 'string');
        pages++;
      } while (token);
      assert.equal(pages, 3);
      assert.deepEqual(seen, added.map((x) => x.id));
      let r = await call(sim, 'GET', '/assay-runs');
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /schemaId/);
      r = await call(sim, 'GET', `/assay-runs?schemaId=${schemaId}&nextToken=garbage`);
      assert.equal(r.status, 400);
      r = await call(sim, 'GET', `/assay-runs?schemaId=${schemaId}&pageSize=101`);
      assert.equal(r.status, 400);
      r = await call(sim, 'GET', '/assay-runs/not-a-run');
      assert.equal(r.status, 400);
      assert.equal(r.body.error.invalidId, 'not-a-run');
    });
  });

  describe('output processors', () => {
    async function createProc(fileId: string, extra: Record<string, unknown> = {}, runId = RUN1) {
      return call(sim, 'POST', '/automation-output-processors', { assayRunId: runId, automationFileConfigName: SEED.outputConfigName, fileId, ...extra });
    }

    test('create validates run, config name and blob state', async () => {
      const fileId = await uploadSmall(sim, 'ok.csv', CSV);
      let r = await createProc(fileId, {}, 'no-such-run');
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /Assay run not found/);
      r = await call(sim, 'POST', '/automation-output-processors', { assayRunId: RUN1, automationFileConfigName: 'Nope', fileId });
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /not an output file config/);
      const mp = await call(sim, 'POST', '/blobs:start-multipart-upload', { name: 'x', type: 'RAW_FILE' });
      r = await createProc(mp.body.id);
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /COMPLETE/);
      r = await createProc('no-such-blob');
      assert.equal(r.status, 400);
      r = await createProc(fileId, { bogus: 1 });
      assert.equal(r.status, 400);
    });

    test('process → task RUNNING → SUCCEEDED with the processed processor', async () => {
      const fileId = await uploadSmall(sim, 'plate.csv', CSV);
      const c = await createProc(fileId, { completeWithErrors: false });
      assert.equal(c.status, 201, c.text);
      assert.match(c.body.id, /^aop_/);
      assert.equal(c.body.status, 'NOT_STARTED');
      assert.equal(c.body.file.id, fileId);
      assert.deepEqual(c.body.automationFileConfig, { name: SEED.outputConfigName });
      const p = await call(sim, 'POST', `/automation-output-processors/${c.body.id}:process-output`);
      assert.equal(p.status, 202);
      assert.deepEqual(Object.keys(p.body), ['taskId']);
      const first = await call(sim, 'GET', `/tasks/${p.body.taskId}`);
      assert.deepEqual(first.body, { status: 'RUNNING' });
      const mid = await call(sim, 'GET', `/automation-output-processors/${c.body.id}`);
      assert.equal(mid.body.status, 'RUNNING');
      const again = await call(sim, 'POST', `/automation-output-processors/${c.body.id}:process-output`);
      assert.equal(again.status, 400);
      const done = await waitTask(sim, p.body.taskId);
      assert.deepEqual(Object.keys(done.body).sort(), ['response', 'status']);
      assert.equal(done.body.status, 'SUCCEEDED');
      assert.equal(done.body.response.id, c.body.id);
      assert.equal(done.body.response.status, 'SUCCEEDED');
      assert.deepEqual(done.body.response.progressStats, { rowsSucceeded: 3, rowsFailed: 0, rowsUnprocessed: 0 });
      assert.equal(sim.getTask(p.body.taskId)!.status, 'SUCCEEDED');
    });

    test('FAIL in the blob name → task FAILED, processor FAILED with errorFile', async () => {
      const fileId = await uploadSmall(sim, 'plate_fail.csv', CSV);
      const c = await createProc(fileId);
      const p = await call(sim, 'POST', `/automation-output-processors/${c.body.id}:process-output`);
      const done = await waitTask(sim, p.body.taskId);
      assert.deepEqual(Object.keys(done.body).sort(), ['message', 'status']);
      assert.equal(done.body.status, 'FAILED');
      assert.match(done.body.message, /FAIL/);
      const g = await call(sim, 'GET', `/automation-output-processors/${c.body.id}`);
      assert.equal(g.body.status, 'FAILED');
      assert.ok(g.body.errorFile && g.body.errorFile.id);
      const u = await call(sim, 'GET', `/blobs/${g.body.errorFile.id}/download-url`);
      const text = await (await fetch(u.body.downloadURL)).text();
      assert.match(text, /line,error/);
    });

    test('#FAIL lines: FAILED without completeWithErrors, SUCCEEDED with rowsFailed when completeWithErrors', async () => {
      const content = 'Well,OD\nA1,1\n#FAIL bad row\nA3,3\n';
      const f1 = await uploadSmall(sim, 'rows.csv', content);
      const c1 = await createProc(f1);
      const t1 = await waitTask(sim, (await call(sim, 'POST', `/automation-output-processors/${c1.body.id}:process-output`)).body.taskId);
      assert.equal(t1.body.status, 'FAILED');
      const c2 = await createProc(f1, { completeWithErrors: true });
      const t2 = await waitTask(sim, (await call(sim, 'POST', `/automation-output-processors/${c2.body.id}:process-output`)).body.taskId);
      assert.equal(t2.body.status, 'SUCCEEDED');
      assert.deepEqual(t2.body.response.progressStats, { rowsSucceeded: 2, rowsFailed: 1, rowsUnprocessed: 0 });
      assert.ok(t2.body.response.errorFile);
    });

    test('PATCH, list filters, paging, archive / unarchive', async () => {
      const runId = sim.addAssayRun({ outputConfigNames: ['Out A', 'Out B'] }).id as string;
      const f = await uploadSmall(sim, 'p.csv', CSV);
      const ids: string[] = [];
      for (const cfg of ['Out A', 'Out A', 'Out B']) {
        const r = await call(sim, 'POST', '/automation-output-processors', { assayRunId: runId, automationFileConfigName: cfg, fileId: f });
        assert.equal(r.status, 201, r.text);
        ids.push(r.body.id);
      }
      let l = await call(sim, 'GET', `/automation-output-processors?assayRunId=${runId}&automationFileConfigName=${encodeURIComponent('Out A')}`);
      assert.deepEqual(l.body.automationOutputProcessors.map((x: { id: string }) => x.id), ids.slice(0, 2));
      assert.equal(l.body.nextToken, '');
      const a = await call(sim, 'POST', '/automation-output-processors:archive', { automationOutputProcessorIds: [ids[0]], reason: 'Made in error' });
      assert.equal(a.status, 200);
      assert.deepEqual(a.body, { automationOutputProcessorIds: [ids[0]], resultIds: [] });
      l = await call(sim, 'GET', `/automation-output-processors?assayRunId=${runId}`);
      assert.deepEqual(l.body.automationOutputProcessors.map((x: { id: string }) => x.id), ids.slice(1));
      l = await call(sim, 'GET', `/automation-output-processors?assayRunId=${runId}&archiveReason=ANY_ARCHIVED`);
      assert.deepEqual(l.body.automationOutputProcessors.map((x: { id: string }) => x.id), [ids[0]]);
      assert.deepEqual(l.body.automationOutputProcessors[0].archiveRecord, { reason: 'Made in error' });
      l = await call(sim, 'GET', `/automation-output-processors?assayRunId=${runId}&archiveReason=ANY_ARCHIVED_OR_NOT_ARCHIVED`);
      assert.equal(l.body.automationOutputProcessors.length, 3);
      const pr = await call(sim, 'POST', `/automation-output-processors/${ids[0]}:process-output`);
      assert.equal(pr.status, 400);
      const bad = await call(sim, 'POST', '/automation-output-processors:archive', { automationOutputProcessorIds: [ids[1], 'aop_nope'] });
      assert.equal(bad.status, 400);
      assert.equal(sim.getProcessor(ids[1])!.archiveRecord, null); // all-or-nothing
      const u = await call(sim, 'POST', '/automation-output-processors:unarchive', { automationOutputProcessorIds: [ids[0]] });
      assert.equal(u.status, 200);
      l = await call(sim, 'GET', `/automation-output-processors?assayRunId=${runId}`);
      assert.equal(l.body.automationOutputProcessors.length, 3);
      const f2 = await uploadSmall(sim, 'p2.csv', CSV);
      const pa = await call(sim, 'PATCH', `/automation-output-processors/${ids[2]}`, { fileId: f2 });
      assert.equal(pa.status, 200);
      assert.equal(pa.body.file.id, f2);
      const pb = await call(sim, 'PATCH', `/automation-output-processors/${ids[2]}`, { fileId: f2, status: 'X' });
      assert.equal(pb.status, 400);
    });

    test('lists page with nextToken (listPageSize)', async () => {
      const lab2 = await startLabSimulator({ benchling: { rateLimit: false, listPageSize: 2 } });
      try {
        const s2 = lab2.benchling;
        const f = await uploadSmall(s2, 'a.csv', CSV);
        for (let i = 0; i < 3; i++) {
          await call(s2, 'POST', '/automation-output-processors', { assayRunId: RUN1, automationFileConfigName: SEED.outputConfigName, fileId: f });
        }
        const p1 = await call(s2, 'GET', '/automation-output-processors');
        assert.equal(p1.body.automationOutputProcessors.length, 2);
        assert.notEqual(p1.body.nextToken, '');
        const p2 = await call(s2, 'GET', `/automation-output-processors?nextToken=${p1.body.nextToken}`);
        assert.equal(p2.body.automationOutputProcessors.length, 1);
        assert.equal(p2.body.nextToken, '');
      } finally {
        await lab2.close();
      }
    });
  });

  describe('input generators', () => {
    test('list by run, generate → task SUCCEEDED with a generated CSV blob', async () => {
      const l = await call(sim, 'GET', `/assay-runs/${RUN1}/automation-input-generators`);
      assert.equal(l.status, 200);
      assert.equal(l.body.nextToken, '');
      const gen = l.body.automationInputGenerators[0];
      assert.equal(gen.id, SEED.runs[0].inputGeneratorId);
      assert.deepEqual(gen.automationFileConfig, { name: SEED.inputConfigName });
      const g = await call(sim, 'GET', `/automation-input-generators/${gen.id}`);
      assert.equal(g.status, 200);
      const t = await call(sim, 'POST', `/automation-input-generators/${gen.id}:generate-input`);
      assert.equal(t.status, 202);
      const done = await waitTask(sim, t.body.taskId);
      assert.equal(done.body.status, 'SUCCEEDED');
      assert.equal(done.body.response.id, gen.id);
      assert.equal(done.body.response.status, 'SUCCEEDED');
      assert.equal(done.body.response.file.mimeType, 'text/csv');
      const csv = (await sim.readBlob(done.body.response.file.id)).toString();
      assert.match(csv, /^Well,SampleId,Volume_uL\n/);
    });

    test('unknown task → 404 with invalidId', async () => {
      const r = await call(sim, 'GET', '/tasks/0c4f0000-0000-4000-8000-000000000000');
      assert.equal(r.status, 404);
      assert.equal(r.body.error.invalidId, '0c4f0000-0000-4000-8000-000000000000');
    });
  });

  describe('download URLs', () => {
    test('fetchable without auth, 403 after expiry and when tampered', async () => {
      const id = await uploadSmall(sim, 'dl.csv', CSV);
      const u = await call(sim, 'GET', `/blobs/${id}/download-url`);
      assert.equal(u.status, 200);
      assert.equal(typeof u.body.expiresAt, 'number');
      assert.ok(u.body.expiresAt >= Math.floor(Date.now() / 1000));
      assert.ok(u.body.downloadURL.startsWith(sim.url + '/sim-s3/'));
      const ok = await fetch(u.body.downloadURL);
      assert.equal(ok.status, 200);
      assert.equal(await ok.text(), CSV);
      // Change the signature's first character to a different one (a fixed '0' would be a no-op 1 time in 16).
      const tampered = await fetch(u.body.downloadURL.replace(/sig=(.)/, (_m: string, c: string) => `sig=${c === '0' ? '1' : '0'}`));
      assert.equal(tampered.status, 403);
      await sleep(Math.max(0, u.body.expiresAt * 1000 - Date.now()) + 100);
      const late = await fetch(u.body.downloadURL);
      assert.equal(late.status, 403);
      assert.match(await late.text(), /AccessDenied/);
      const redirect = await fetch(`${sim.apiBase}/blobs/${id}/download`, { headers: { authorization: sim.authHeader() }, redirect: 'manual' });
      assert.equal(redirect.status, 302);
      assert.ok(redirect.headers.get('location')!.includes('/sim-s3/'));
    });

    test('download-url of an IN_PROGRESS blob → 400', async () => {
      const mp = await call(sim, 'POST', '/blobs:start-multipart-upload', { name: 'x', type: 'RAW_FILE' });
      const r = await call(sim, 'GET', `/blobs/${mp.body.id}/download-url`);
      assert.equal(r.status, 400);
    });
  });
});

describe('benchling simulator: rate limit', () => {
  let lab: LabSimulator;
  before(async () => {
    lab = await startLabSimulator({ benchling: { rateLimit: { limit: 5, windowMs: 1500 } } });
  });
  after(() => lab.close());

  test('x-rate-limit-* on every response; 429 with the documented body and no Retry-After', async () => {
    const sim = lab.benchling;
    for (let i = 0; i < 5; i++) {
      const r = await call(sim, 'GET', `/assay-runs/${RUN1}`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-rate-limit-limit'), '5');
      assert.equal(r.headers.get('x-rate-limit-remaining'), String(4 - i));
      const reset = Number(r.headers.get('x-rate-limit-reset'));
      assert.ok(reset >= 0 && reset <= 2, String(reset));
    }
    const r = await call(sim, 'GET', `/assay-runs/${RUN1}`);
    assert.equal(r.status, 429);
    assert.deepEqual(r.body, { error: { message: 'Rate limit exceeded.', type: 'invalid_request_error', userMessage: 'Rate limit exceeded.' } });
    assert.equal(r.headers.get('retry-after'), null);
    assert.equal(r.headers.get('x-rate-limit-remaining'), '0');
    assert.equal(sim.counters.rateLimited, 1);
    // the limit is per tenant: checked before auth, so every caller gets the 429
    const u = await call(sim, 'GET', `/assay-runs/${RUN1}`, undefined, { auth: null });
    assert.equal(u.status, 429);
    // GET /blobs/{id}/download does not consume from the limit
    const blobId = sim.addBlob('d.csv', 'a\n').id;
    const dl = await fetch(`${sim.apiBase}/blobs/${blobId}/download`, { headers: { authorization: sim.authHeader() }, redirect: 'manual' });
    assert.equal(dl.status, 302);
    await sleep(Number(r.headers.get('x-rate-limit-reset')) * 1000 + 100);
    const again = await call(sim, 'GET', `/assay-runs/${RUN1}`);
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('x-rate-limit-remaining'), '4');
    assert.ok(sim.requestLog.filter((e) => e.status === 429).length >= 2);
  });
});

describe('benchling simulator: one window for the whole tenant', () => {
  test('two lab PCs with their own API keys spend one window, and both see it in the headers', async () => {
    const lab = await startLabSimulator({ benchling: { rateLimit: { limit: 6, windowMs: 30_000 }, apiKeys: ['sk_FAKE_pc1', 'sk_FAKE_pc2'] } });
    try {
      const sim = lab.benchling;
      const pc1 = { auth: sim.authHeader('sk_FAKE_pc1') };
      const pc2 = { auth: sim.authHeader('sk_FAKE_pc2') };
      const seen: string[] = [];
      for (const who of [pc1, pc2, pc1, pc2, pc2, pc1]) {
        const r = await call(sim, 'GET', `/assay-runs/${RUN1}`, undefined, who);
        assert.equal(r.status, 200);
        seen.push(String(r.headers.get('x-rate-limit-remaining')));
      }
      assert.deepEqual(seen, ['5', '4', '3', '2', '1', '0'], 'remaining falls with every PC\'s requests');
      const refused = await call(sim, 'GET', `/assay-runs/${RUN1}`, undefined, pc2);
      assert.equal(refused.status, 429, 'the other PC is refused too: the limit is the tenant\'s');
      assert.equal(refused.headers.get('x-rate-limit-remaining'), '0');
      assert.ok(Number(refused.headers.get('x-rate-limit-reset')) > 0);
    } finally {
      await lab.close();
    }
  });
});

describe('benchling simulator: faults', () => {
  let lab: LabSimulator;
  let sim: BenchlingSim;
  before(async () => {
    lab = await startLabSimulator({ benchling: { rateLimit: false } });
    sim = lab.benchling;
  });
  after(() => lab.close());

  const body = () => blobBody('f.csv', Buffer.from('a,b\n1,2\n'));

  test('429 / 500 / 503 / html: answered before handling, no state change', async () => {
    for (const kind of ['429', '500', '503', 'html'] as const) {
      const before = sim.listBlobs().length;
      sim.injectFault({ kind, method: 'POST', path: /\/blobs$/ });
      const r = await call(sim, 'POST', '/blobs', body());
      if (kind === 'html') {
        assert.equal(r.status, 502);
        assert.match(r.headers.get('content-type')!, /text\/html/);
        assert.match(r.text, /<html>/);
      } else {
        assert.equal(r.status, Number(kind));
        assert.equal(typeof r.body.error.message, 'string');
      }
      if (kind === '429') assert.equal(r.headers.get('retry-after'), null);
      assert.equal(sim.listBlobs().length, before, `state changed by ${kind}`);
      assert.equal(sim.counters.faults[kind], 1);
      const ok = await call(sim, 'POST', '/blobs', body());
      assert.equal(ok.status, 200);
    }
  });

  test('times, method and path matching', async () => {
    sim.injectFault({ kind: '503', times: 2, path: /\/assay-runs\// });
    assert.equal((await call(sim, 'GET', '/blobs/none')).status, 404); // path does not match
    assert.equal((await call(sim, 'GET', `/assay-runs/${RUN1}`)).status, 503);
    assert.equal((await call(sim, 'GET', `/assay-runs/${RUN1}`)).status, 503);
    assert.equal((await call(sim, 'GET', `/assay-runs/${RUN1}`)).status, 200);
    sim.injectFault({ kind: '500', method: 'POST' });
    assert.equal((await call(sim, 'GET', `/assay-runs/${RUN1}`)).status, 200);
    sim.clearFaults();
    assert.equal((await call(sim, 'POST', '/blobs', body())).status, 200);
  });

  test('reset destroys the socket; no state change', async () => {
    const before = sim.listBlobs().length;
    sim.injectFault({ kind: 'reset' });
    await assert.rejects(call(sim, 'POST', '/blobs', body()));
    assert.equal(sim.listBlobs().length, before);
    assert.equal(sim.counters.faults.reset, 1);
    assert.equal((await call(sim, 'GET', `/assay-runs/${RUN1}`)).status, 200);
  });

  test('hang never answers', async () => {
    sim.injectFault({ kind: 'hang' });
    await assert.rejects(call(sim, 'GET', `/assay-runs/${RUN1}`, undefined, { signal: AbortSignal.timeout(300) }));
    const last = sim.requestLog[sim.requestLog.length - 1];
    assert.equal(last.fault, 'hang');
    assert.equal(last.status, 0);
  });

  test('probabilistic faults', async () => {
    sim.setFaultProbabilities({ p500: 1 });
    for (let i = 0; i < 3; i++) assert.equal((await call(sim, 'GET', `/assay-runs/${RUN1}`)).status, 500);
    sim.setFaultProbabilities({ p429: 0.5, p503: 0.5 });
    for (let i = 0; i < 4; i++) assert.ok([429, 503].includes((await call(sim, 'GET', `/assay-runs/${RUN1}`)).status));
    sim.setFaultProbabilities({});
    assert.equal((await call(sim, 'GET', `/assay-runs/${RUN1}`)).status, 200);
  });

  test('after-handling faults: the server acts, then the answer is lost', async () => {
    for (const spec of [{ kind: 'resetAfter' }, { kind: '500After' }, { kind: 'htmlAfter' }, { kind: 'reset', after: true }, { kind: '500', after: true }, { kind: 'html', after: true }] as const) {
      const before = sim.listBlobs().length;
      sim.injectFault({ ...spec, method: 'POST', path: /\/blobs$/ });
      const outcome = await call(sim, 'POST', '/blobs', body()).then(
        (r) => r.status,
        () => 0,
      );
      const want = spec.kind.startsWith('reset') ? 0 : spec.kind.startsWith('500') ? 500 : 502;
      assert.equal(outcome, want, JSON.stringify(spec));
      assert.equal(sim.listBlobs().length, before + 1, `${JSON.stringify(spec)}: the blob was created`);
      const last = sim.requestLog[sim.requestLog.length - 1];
      assert.equal(last.handledStatus, 200);
      assert.equal(last.fault, spec.kind.endsWith('After') ? spec.kind : `${spec.kind}After`);
    }
    assert.equal(sim.counters.faults.resetAfter, 2);
    assert.equal(sim.counters.faults['500After'], 2);
    assert.equal(sim.counters.faults.htmlAfter, 2);
    assert.throws(() => sim.injectFault({ kind: '429', after: true }), /no after-handling variant/);
  });

  test('slow: the real answer after the delay; trickle: headers at once, the body a byte at a time', async () => {
    sim.injectFault({ kind: 'slow', delayMs: 400 });
    let t0 = Date.now();
    const slow = await call(sim, 'GET', `/assay-runs/${RUN1}`);
    assert.equal(slow.status, 200);
    assert.ok(Date.now() - t0 >= 380, `slow took ${Date.now() - t0} ms`);
    const blobId = await uploadSmall(sim, 'trickle.csv', 'a\n1\n');
    sim.setFaultTimings({ trickleByteMs: 2 });
    sim.injectFault({ kind: 'trickle' });
    t0 = Date.now();
    const r = await fetch(`${sim.apiBase}/blobs/${blobId}`, { headers: { authorization: sim.authHeader() } });
    const headersAfter = Date.now() - t0;
    const text = await r.text();
    const bodyAfter = Date.now() - t0;
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(text).id, blobId);
    assert.ok(bodyAfter - headersAfter >= text.length, `body in ${bodyAfter - headersAfter} ms for ${text.length} bytes`);
    assert.equal(sim.counters.faults.slow, 1);
    assert.equal(sim.counters.faults.trickle, 1);
    sim.setFaultTimings({ trickleByteMs: 1000 });
  });

  test('request log tells the rate limiter\'s 429s from injected ones; processors can be listed with their files', async () => {
    sim.injectFault({ kind: '429' });
    await call(sim, 'GET', `/assay-runs/${RUN1}`);
    sim.setRateLimit({ limit: 1, windowMs: 60_000 });
    try {
      await call(sim, 'GET', `/assay-runs/${RUN1}`);
      await call(sim, 'GET', `/assay-runs/${RUN1}`);
    } finally {
      sim.setRateLimit(false);
    }
    const last3 = sim.requestLog.slice(-3);
    assert.deepEqual(last3.map((e) => [e.status, e.fault ?? null, !!e.rateLimited]), [[429, '429', false], [200, null, false], [429, null, true]]);
    const fileId = await uploadSmall(sim, 'info.csv', 'a\n1\n');
    const p = await call(sim, 'POST', '/automation-output-processors', { assayRunId: RUN1, automationFileConfigName: SEED.outputConfigName, fileId });
    assert.equal(p.status, 201, p.text);
    const info = sim.listProcessorInfo().find((x) => x.id === p.body.id)!;
    assert.equal(info.fileId, fileId);
    assert.equal(info.fileName, 'info.csv');
    assert.equal(info.status, 'NOT_STARTED');
    assert.deepEqual(info.taskIds, []);
  });

  test('spreadFaults shares a total over every kind', () => {
    const f = spreadFaults(0.22);
    assert.equal(Object.keys(f).length, FAULT_KINDS.length);
    assert.ok(Math.abs(Object.values(f).reduce((a, v) => a + (v ?? 0), 0) - 0.22) < 1e-9);
  });

  test('body over the limit → 413', async () => {
    const lab2 = await startLabSimulator({ benchling: { rateLimit: false, maxBodyBytes: 1000 } });
    try {
      const r = await call(lab2.benchling, 'POST', '/blobs', blobBody('x', filled(2000, 1)));
      assert.equal(r.status, 413);
    } finally {
      await lab2.close();
    }
  });

  test('close() destroys hung requests and removes the temp dir', async () => {
    const lab2 = await startLabSimulator({ benchling: { rateLimit: false } });
    const s2 = lab2.benchling;
    const mp = await call(s2, 'POST', '/blobs:start-multipart-upload', { name: 'x', type: 'RAW_FILE' });
    await call(s2, 'POST', `/blobs/${mp.body.id}/parts`, { partNumber: 1, data64: 'AA==', md5: md5(Buffer.from([0])) });
    const dir = fs.readdirSync(os.tmpdir()).filter((d: string) => d.startsWith(`labwire-sim-${process.pid}-`));
    s2.injectFault({ kind: 'hang' });
    const pending = call(s2, 'GET', `/assay-runs/${RUN1}`).then(
      () => 'answered',
      () => 'failed',
    );
    await sleep(100);
    const t0 = Date.now();
    await lab2.close();
    assert.equal(await pending, 'failed');
    assert.ok(Date.now() - t0 < 2000);
    const after = fs.readdirSync(os.tmpdir()).filter((d: string) => d.startsWith(`labwire-sim-${process.pid}-`));
    assert.ok(after.length < dir.length);
  });
});

describe('benchling simulator: 1 GiB multipart upload', { skip: process.env.LABWIRE_BIG_TESTS ? false : 'set LABWIRE_BIG_TESTS=1 to run (uploads ~1 GiB)' }, () => {
  test('110 parts of ~9.77 MB complete with correct md5/size, without holding the blob in memory', async () => {
    const lab = await startLabSimulator({ benchling: { rateLimit: false } });
    try {
      const sim = lab.benchling;
      const total = 1024 * 1024 * 1024;
      const partSize = 9_800_000;
      const mp = await call(sim, 'POST', '/blobs:start-multipart-upload', { name: 'gib.bin', type: 'RAW_FILE' });
      const whole = crypto.createHash('md5');
      const parts = [];
      let n = 0;
      for (let off = 0; off < total; off += partSize) {
        const data = filled(Math.min(partSize, total - off), ++n);
        whole.update(data);
        const r = await call(sim, 'POST', `/blobs/${mp.body.id}/parts`, { partNumber: n, data64: data.toString('base64'), md5: md5(data) });
        assert.equal(r.status, 200, r.text);
        parts.push(r.body);
      }
      const c = await call(sim, 'POST', `/blobs/${mp.body.id}:complete-upload`, { parts });
      assert.equal(c.status, 200, c.text);
      const info = sim.getBlob(mp.body.id)!;
      assert.equal(info.size, total);
      assert.equal(info.md5, whole.digest('hex'));
      assert.equal(info.inMemory, false);
      assert.equal(info.parts.length, n);
    } finally {
      await lab.close();
    }
  });
});
