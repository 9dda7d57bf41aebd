/**
 * The operator's admin API in a real Node-RED process (scripts/node-red-process) against the lab
 * simulator: watch folder → upload → processor → task, acks wired back. Three files, one named
 * FAIL-… (the simulator fails its processing): GET /labwire/files lists two done and one failed
 * with the simulator's reason; retry records attempt 2; skip marks it done with who; live updates
 * arrive on the comms topic; health answers 200, then 503 once the folder is gone. With adminAuth,
 * a read-only user may list but gets 403 on retry and skip.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, LabSimulator, SEED, DEFAULT_API_KEY } from '../simulator';
import { freePort, startNodeRed, NodeRedProcess } from '../scripts/node-red-process';
import { tempDir, delay } from './support/nodered';
import { adminCall, adminToken, twoUserAdminAuth, TEST_PASSWORD } from './support/admin-http';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const WebSocket = require('ws') as new (url: string) => { on(ev: string, fn: (...a: any[]) => void): void; send(s: string): void; close(): void };

const call = (url: string, method = 'GET', token?: string, body?: unknown) => adminCall(url, { method, token, body });

async function waitFor<T>(fn: () => Promise<T | undefined | false>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(100);
  }
}

function pipeline(url: string, folder: string, archive: string): unknown[] {
  return [
    { id: 'tab', type: 'tab', label: 'pipeline' },
    { id: 'tenant', type: 'benchling-tenant', z: 'tab', url, rateLimit: 600, timeout: 5, credentials: { apiKey: DEFAULT_API_KEY } },
    { id: 'watch', type: 'lab-watch-folder', z: 'tab', name: 'Plate reader', folder, include: '*.csv', stability: 0.2, probeInterval: 0.1, rescanInterval: 0.5, postAction: 'move', archiveFolder: archive, retryBase: 0.2, retryMax: 0.5, wires: [['upload']] },
    { id: 'upload', type: 'benchling-upload-blob', z: 'tab', tenant: 'tenant', file: 'payload', fileType: 'msg', wires: [['create']] },
    { id: 'create', type: 'benchling-create-processor', z: 'tab', tenant: 'tenant', assayRunId: SEED.runs[0].id, assayRunIdType: 'str', configName: SEED.outputConfigName, configNameType: 'str', fileId: 'blobId', fileIdType: 'msg', wires: [['poll']] },
    { id: 'poll', type: 'benchling-poll-task', z: 'tab', tenant: 'tenant', taskId: 'taskId', taskIdType: 'msg', interval: 0.05, maxInterval: 0.2, timeout: 20, wires: [['watch'], ['watch']] },
    { id: 'catcher', type: 'catch', z: 'tab', scope: ['upload', 'create', 'poll'], uncaught: false, wires: [['watch']] },
  ];
}

describe('operator admin API in Node-RED', () => {
  let sim: LabSimulator;
  before(async () => {
    sim = await startLabSimulator({ benchling: { rateLimit: false } });
  });
  after(async () => {
    await sim.close();
  });

  test('lists done and failed files with the reason; retry records attempt 2; skip marks done with who; live updates; health 200 then 503', async () => {
    const root = tempDir('operator-api');
    const folder = path.join(root, 'in');
    const archive = path.join(root, 'archive');
    fs.mkdirSync(folder);
    const log: string[] = [];
    const red: NodeRedProcess = await startNodeRed({ userDir: path.join(root, 'user'), port: await freePort(), onLog: (l) => log.push(l), settings: { labwire: { stuckAfterMinutes: 30 } } });
    try {
      await red.deploy(pipeline(sim.benchling.url, folder, archive));
      const comms: any[] = [];
      const ws = new WebSocket(red.url.replace('http', 'ws') + '/comms');
      ws.on('open', () => ws.send(JSON.stringify({ subscribe: 'labwire/files' })));
      ws.on('message', (m: Buffer) => {
        for (const e of JSON.parse(String(m))) if (e.topic === 'labwire/files') comms.push(e.data);
      });
      await delay(300);

      fs.writeFileSync(path.join(folder, 'run-1.csv'), 'well,od\nA1,0.1\n');
      fs.writeFileSync(path.join(folder, 'run-2.csv'), 'well,od\nA1,0.2\n');
      fs.writeFileSync(path.join(folder, 'FAIL-run-3.csv'), 'well,od\nA1,0.3\n');

      const list = await waitFor(
        async () => {
          const r = await call(`${red.url}/labwire/files`);
          return r.status === 200 && r.body.counts.done === 2 && r.body.counts.failed === 1 && r.body;
        },
        30_000,
        'two done, one failed',
      );
      assert.deepEqual(list.counts, { waiting: 0, 'in-progress': 0, retrying: 0, done: 2, failed: 1 });
      assert.equal(list.nextCursor, null);
      assert.equal(list.files.length, 3);
      const failed = list.files.find((f: any) => f.state === 'failed');
      assert.equal(failed.name, 'FAIL-run-3.csv');
      assert.equal(failed.failure.code, 'TASK_FAILED');
      assert.match(failed.failure.message, /Output file processing failed \(simulated\)/);
      assert.equal(failed.failure.node.type, 'benchling-poll-task');
      assert.ok(failed.failure.errorFile?.downloadURL, 'the error file link');
      assert.equal(failed.attempts, 1);
      assert.deepEqual(failed.watcher, { id: 'watch', name: 'Plate reader' });
      assert.equal(list.files[0].id, failed.id, 'the file still in the watcher\'s care comes first');
      for (const f of list.files.filter((x: any) => x.state === 'done')) {
        assert.ok(f.blobId && f.processorId && f.taskId, `ids of ${f.name}`);
        assert.equal(f.assayRunId, SEED.runs[0].id);
        for (const s of ['seen', 'stable', 'uploaded', 'processorCreated', 'taskFinished', 'done']) assert.ok(f.stages[s], `${f.name}: stage ${s}`);
        assert.ok(f.archivedTo.startsWith(archive));
      }
      const filtered = await call(`${red.url}/labwire/files?state=done&limit=1`);
      assert.equal(filtered.body.files.length, 1);
      assert.ok(filtered.body.nextCursor);
      const page2 = await call(`${red.url}/labwire/files?state=done&limit=1&cursor=${filtered.body.nextCursor}`);
      assert.equal(page2.body.files.length, 1);
      assert.notEqual(page2.body.files[0].id, filtered.body.files[0].id);
      assert.equal(page2.body.nextCursor, null);
      assert.deepEqual((await call(`${red.url}/labwire/files?q=fail-run`)).body.files.map((f: any) => f.id), [failed.id]);

      // Refusals.
      const badLimit = await call(`${red.url}/labwire/files?limit=0`);
      assert.equal(badLimit.status, 400);
      assert.match(badLimit.body.error.message, /limit must be a whole number from 1 to 500/);
      assert.equal((await call(`${red.url}/labwire/files?cursor=abc`)).status, 400);
      assert.equal((await call(`${red.url}/labwire/files?state=lost`)).status, 400);
      assert.equal((await call(`${red.url}/labwire/files/0123456789abcdef/retry`, 'POST')).status, 404);
      assert.equal((await call(`${red.url}/labwire/files/..%2F..%2Fsettings.js/retry`, 'POST')).status, 400);
      const doneId = list.files.find((f: any) => f.state === 'done').id;
      const again = await call(`${red.url}/labwire/files/${doneId}/retry`, 'POST');
      assert.equal(again.status, 409, 'a done file is not retried');
      assert.equal((await call(`${red.url}/labwire/files/${doneId}/skip`, 'POST')).status, 409);

      // Retry: attempt 2 (the simulator fails it again: dead-lettered again, with two attempts).
      const retried = await call(`${red.url}/labwire/files/${failed.id}/retry`, 'POST');
      assert.equal(retried.status, 200, JSON.stringify(retried.body));
      assert.equal(retried.body.file.attempts, 2);
      assert.equal(retried.body.file.state, 'in-progress');
      const refailed = await waitFor(
        async () => {
          const r = await call(`${red.url}/labwire/files?state=failed`);
          const f = r.body.files[0];
          return f && f.attempts === 2 && f;
        },
        20_000,
        'the second attempt failed',
      );
      assert.match(refailed.failure.message, /Output file processing failed \(simulated\)/);

      // Skip: done by hand, with who.
      const skipped = await call(`${red.url}/labwire/files/${failed.id}/skip`, 'POST');
      assert.equal(skipped.status, 200);
      assert.equal(skipped.body.file.state, 'done');
      assert.equal(skipped.body.file.skipped.by, 'admin API');
      const after = await call(`${red.url}/labwire/files`);
      assert.deepEqual(after.body.counts, { waiting: 0, 'in-progress': 0, retrying: 0, done: 3, failed: 0 });
      assert.equal(after.body.files.find((f: any) => f.id === failed.id).skipped.by, 'admin API');

      // Live updates came, at most a few per second, with the counts and the ids that changed.
      await waitFor(async () => comms.some((c) => c.counts.done === 3), 5000, 'a live update after the skip');
      assert.ok(comms.some((c) => c.changed.includes(failed.id)));
      ws.close();

      // The log tells each outcome.
      assert.ok(log.some((l) => /\[info\].*run-1\.csv done \(run .+\) in .+ after 1 attempt/.test(l)), log.filter((l) => /lab-watch-folder/.test(l)).join('\n'));
      assert.ok(log.some((l) => /\[warn\].*FAIL-run-3\.csv failed on attempt 1 \(TASK_FAILED: .*Output file processing failed \(simulated\).*\); dead-lettered/.test(l)));

      // Health: fine, then the folder goes.
      const healthy = await call(`${red.url}/labwire/health`);
      assert.equal(healthy.status, 200);
      assert.equal(healthy.body.status, 'ok');
      assert.equal(healthy.body.watchers.length, 1);
      const w = healthy.body.watchers[0];
      assert.deepEqual({ id: w.id, name: w.name, folder: w.folder, folderReachable: w.folderReachable, stuck: w.stuck }, { id: 'watch', name: 'Plate reader', folder, folderReachable: true, stuck: 0 });
      assert.ok(w.lastFileSeen && w.lastSuccess);
      fs.rmSync(folder, { recursive: true, force: true });
      const sick = await call(`${red.url}/labwire/health`);
      assert.equal(sick.status, 503);
      assert.equal(sick.body.status, 'unhealthy');
      assert.equal(sick.body.watchers[0].folderReachable, false);
    } finally {
      await red.stop();
    }
  });

  test('with adminAuth: a read-only user lists files but gets 403 on retry and skip; no login gets 401', async () => {
    const root = tempDir('operator-auth');
    const red = await startNodeRed({
      userDir: path.join(root, 'user'),
      port: await freePort(),
      settings: { adminAuth: twoUserAdminAuth() },
    });
    try {
      const token = (username: string, scope: string) => adminToken(red.url, username, TEST_PASSWORD, scope);
      const viewer = await token('viewer', 'read');
      const ops = await token('ops', '*');
      assert.equal((await call(`${red.url}/labwire/files`)).status, 401);
      assert.equal((await call(`${red.url}/labwire/files`, 'GET', viewer)).status, 200);
      assert.equal((await call(`${red.url}/labwire/health`, 'GET', viewer)).status, 200);
      assert.equal((await call(`${red.url}/labwire/files/0123456789abcdef/retry`, 'POST', viewer)).status, 403);
      assert.equal((await call(`${red.url}/labwire/files/0123456789abcdef/skip`, 'POST', viewer)).status, 403);
      assert.equal((await call(`${red.url}/labwire/files/0123456789abcdef/retry`, 'POST')).status, 401);
      assert.equal((await call(`${red.url}/labwire/files/0123456789abcdef/retry`, 'POST', ops)).status, 404);
    } finally {
      await red.stop();
    }
  });
});
