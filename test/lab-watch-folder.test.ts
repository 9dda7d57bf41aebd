/**
 * lab-watch-folder inside a real Node-RED runtime: real files, real timers, short windows.
 */
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { helper, nodeModule, unload, tempDir, messages, nextMessage, delay } from './support/nodered';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const catchNode = require('@node-red/nodes/core/common/25-catch.js');

const STABLE_S = 0.25;
const TYPE = 'lab-watch-folder';

async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

function flow(props: Record<string, unknown>): unknown[] {
  return [
    { id: 'tab', type: 'tab', label: 'watch' },
    {
      id: 'w1',
      z: 'tab',
      type: TYPE,
      name: 'instrument',
      stability: STABLE_S,
      probeInterval: 0.1,
      rescanInterval: 60,
      wires: [['out']],
      ...props,
    },
    { id: 'out', z: 'tab', type: 'helper' },
    { id: 'c1', z: 'tab', type: 'catch', scope: ['w1'], wires: [['caught']] },
    { id: 'caught', z: 'tab', type: 'helper' },
  ];
}

async function load(props: Record<string, unknown>, userDir?: string) {
  helper.settings({ userDir: userDir ?? dir('userdir') });
  await new Promise<void>((resolve) => helper.load([nodeModule(TYPE), catchNode], flow(props), {}, () => resolve()));
  return { w: helper.getNode('w1'), out: helper.getNode('out'), caught: helper.getNode('caught') };
}

function lastStatus(node: any): { fill?: string; shape?: string; text?: string } {
  const calls = node.status.getCalls?.() ?? [];
  return calls.length ? calls[calls.length - 1].args[0] : {};
}

const dirs: string[] = [];
function dir(prefix: string): string {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
}

describe('lab-watch-folder (Node-RED)', () => {
  before(() => helper.startServer());
  after(async () => {
    await helper.stopServer();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  afterEach(() => unload());

  test('sends one message per stable file, with the documented properties and status', async () => {
    const folder = dir('watch');
    const { w, out } = await load({ folder });
    const got = nextMessage(out, 5000);
    fs.writeFileSync(path.join(folder, 'plate1.csv'), 'a,b\n1,2\n');
    const msg = await got;
    const full = path.join(folder, 'plate1.csv');
    assert.equal(msg.payload, full);
    assert.equal(msg.filename, full);
    assert.equal(msg.topic, folder);
    assert.equal(msg.file.name, 'plate1.csv');
    assert.equal(msg.file.path, full);
    assert.equal(msg.file.relativePath, 'plate1.csv');
    assert.equal(msg.file.size, 8);
    assert.equal(msg.file.mtime, fs.statSync(full).mtime.toISOString());
    assert.equal(msg.labwireFile.path, full);
    assert.equal(msg.labwireFile.relativePath, 'plate1.csv');
    assert.equal(msg.labwireFile.size, 8);
    assert.match(msg.labwireFile.id, /^[0-9a-f]{16}$/);
    await waitFor(() => /1 files .* 1 unacked/.test(lastStatus(w).text ?? ''), 3000, 'status with counts');
    assert.equal(lastStatus(w).fill, 'green');
    await delay(STABLE_S * 3000);
    assert.equal(out.listenerCount('input'), 0);
  });

  test('ack (msg.labwireFile wired back) moves the file to the archive; nothing moves without ack', async () => {
    const folder = dir('watch');
    const archive = path.join(dir('archive'), 'done');
    fs.writeFileSync(path.join(folder, 'a.csv'), 'A');
    fs.writeFileSync(path.join(folder, 'b.csv'), 'B');
    const { w, out } = await load({ folder, postAction: 'move', archiveFolder: archive });
    const msgs = await messages(out, 2, 5000);
    await delay(STABLE_S * 2000);
    assert.ok(fs.existsSync(path.join(folder, 'a.csv')) && fs.existsSync(path.join(folder, 'b.csv')), 'moved without ack');
    const a = msgs.find((m) => m.file.name === 'a.csv');
    w.receive(a);
    await waitFor(() => fs.existsSync(path.join(archive, 'a.csv')), 3000, 'a.csv in the archive');
    assert.equal(fs.readFileSync(path.join(archive, 'a.csv'), 'utf8'), 'A');
    assert.ok(!fs.existsSync(path.join(folder, 'a.csv')));
    assert.ok(fs.existsSync(path.join(folder, 'b.csv')), 'b.csv moved without its ack');
  });

  test('ack deletes with post-action delete; a failure (msg.error) keeps the file', async () => {
    const folder = dir('watch');
    fs.writeFileSync(path.join(folder, 'ok.csv'), 'ok');
    fs.writeFileSync(path.join(folder, 'bad.csv'), 'bad');
    const userDir = dir('userdir');
    const { w, out } = await load({ folder, postAction: 'delete', rescanInterval: 0.2 }, userDir);
    const msgs = await messages(out, 2, 5000);
    const ok = msgs.find((m) => m.file.name === 'ok.csv');
    const bad = msgs.find((m) => m.file.name === 'bad.csv');
    // ack by file name (msg.ack + msg.filename) instead of labwireFile
    w.receive({ ack: true, filename: ok.filename });
    bad.error = { message: 'upload failed', source: { id: 'x' } };
    w.receive(bad);
    await waitFor(() => !fs.existsSync(ok.filename), 3000, 'ok.csv deleted');
    await delay(STABLE_S * 3000); // several rescans
    assert.ok(fs.existsSync(bad.filename), 'a failed file was deleted');
    // The ledger (journal) records the failure with its reason.
    const ledger = fs.readFileSync(path.join(userDir, 'labwire-state', 'watch-folder-w1.jsonl'), 'utf8');
    const last = new Map<string, any>();
    for (const line of ledger.split('\n').filter(Boolean)) {
      const r = JSON.parse(line);
      last.set(r.k, r.v);
    }
    assert.equal(last.get('bad.csv')?.state, 'failed');
    assert.equal(last.get('bad.csv')?.error, 'upload failed');
    assert.equal(last.get('ok.csv'), undefined, 'a deleted file stays in the ledger');
    assert.equal(out.listenerCount('input'), 0);
  });

  test('each file is sent once across a restart; an unacknowledged one is sent again', async () => {
    const folder = dir('watch');
    const userDir = dir('userdir');
    fs.writeFileSync(path.join(folder, 'acked.csv'), '1');
    fs.writeFileSync(path.join(folder, 'pending.csv'), '2');
    let n = await load({ folder }, userDir);
    const first = await messages(n.out, 2, 5000);
    n.w.receive(first.find((m) => m.file.name === 'acked.csv'));
    await delay(300);
    await unload();

    n = await load({ folder }, userDir);
    const got: any[] = [];
    n.out.on('input', (m: any) => got.push(m));
    await waitFor(() => got.length === 1, 5000, 'the unacknowledged file');
    await delay(STABLE_S * 3000);
    assert.deepEqual(got.map((m) => m.file.name), ['pending.csv']);
    assert.equal(got[0].labwireFile.deliveryCount, 2);
    n.w.receive(got[0]);
    await delay(300);
    await unload();

    n = await load({ folder }, userDir);
    const later: any[] = [];
    n.out.on('input', (m: any) => later.push(m));
    await delay(STABLE_S * 4000);
    assert.equal(later.length, 0, `sent again: ${later.map((m) => m.file.name)}`);
  });

  test('a missing folder shows "waiting for folder"; files are sent once it appears', async () => {
    const folder = path.join(dir('parent'), 'not-yet');
    const { w, out } = await load({ folder });
    await waitFor(() => lastStatus(w).text === 'waiting for folder', 3000, 'waiting status');
    assert.equal(lastStatus(w).fill, 'yellow');
    fs.mkdirSync(folder);
    fs.writeFileSync(path.join(folder, 'late.csv'), 'late');
    const msg = await nextMessage(out, 5000);
    assert.equal(msg.file.name, 'late.csv');
    await waitFor(() => lastStatus(w).fill === 'green', 3000, 'green status');
  });

  test('poll mode with a long interval: msg.topic "rescan" picks up a new file now', async () => {
    const folder = dir('watch');
    const { w, out } = await load({ folder, mode: 'poll', pollInterval: 3600 });
    await delay(200);
    fs.writeFileSync(path.join(folder, 'polled.csv'), 'p');
    await delay(STABLE_S * 2000);
    assert.equal(out.listenerCount('input'), 0);
    const got = nextMessage(out, 3000);
    w.receive({ topic: 'rescan' });
    assert.equal((await got).file.name, 'polled.csv');
  });

  test('a bad folder setting gives a red status and an error; input goes to Catch', async () => {
    const { w, caught } = await load({ folder: 'relative/folder' });
    assert.equal(lastStatus(w).fill, 'red');
    assert.equal(lastStatus(w).text, 'bad settings');
    assert.ok(w.error.getCalls().some((c: any) => /absolute path/.test(String(c.args[0]))), 'no clear error');
    const got = nextMessage(caught, 3000);
    w.receive({ topic: 'rescan' });
    const m = await got;
    assert.match(m.error.message, /folder must be an absolute path/);
  });

  test('a folder that is a file: red status and a warning saying so; an input not understood goes to Catch', async () => {
    const base = dir('notdir');
    const file = path.join(base, 'file.txt');
    fs.writeFileSync(file, 'x');
    const { w, caught } = await load({ folder: file });
    await waitFor(() => lastStatus(w).fill === 'red', 3000, 'red status');
    assert.match(lastStatus(w).text ?? '', /^\//, 'the status tells the problem, not just "error"');
    assert.ok(w.warn.getCalls().some((c: any) => String(c.args[0]) === `${file} is not a folder`), 'no warning naming the folder');
    const got = nextMessage(caught, 3000);
    w.receive({ payload: 'what?' });
    const m = await got;
    assert.equal(m.error.code, 'BAD_INPUT');
    assert.match(m.error.message, /input not understood: send back msg\.labwireFile/);
  });

  test('an unset environment variable in the folder is a clear error; a set one is used', async () => {
    delete process.env.LW_WATCH_UNSET;
    let n = await load({ folder: '${LW_WATCH_UNSET}/x' });
    assert.equal(lastStatus(n.w).fill, 'red');
    assert.ok(n.w.error.getCalls().some((c: any) => /LW_WATCH_UNSET is not set/.test(String(c.args[0]))));
    await unload();

    const base = dir('env');
    fs.mkdirSync(path.join(base, 'export'));
    process.env.LW_WATCH_BASE = base;
    n = await load({ folder: '${LW_WATCH_BASE}/export' });
    const got = nextMessage(n.out, 5000);
    fs.writeFileSync(path.join(base, 'export', 'env.csv'), 'e');
    assert.equal((await got).filename, path.join(base, 'export', 'env.csv'));
  });
});
