/**
 * FolderWatcher without Node-RED: real files in a temp folder, real timers with short windows.
 */
import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import { FolderWatcher, FolderWatcherOptions, WatchedFile, WatcherStatus, compileGlob, isUncPath } from '../nodes/clients/folder-watcher';
import { LabError } from '../nodes/lib/http/errors';

const STABLE = 250;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await (cleanups.pop() as () => Promise<void> | void)();
});

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-test-'));
  cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

interface Harness {
  w: FolderWatcher;
  files: WatchedFile[];
  statuses: WatcherStatus[];
  names: () => string[];
}

async function startWatcher(opts: FolderWatcherOptions, start = true): Promise<Harness> {
  const w = new FolderWatcher({ stabilityMs: STABLE, folderProbeMs: 100, ...opts });
  const files: WatchedFile[] = [];
  const statuses: WatcherStatus[] = [];
  w.on('file', (f) => files.push(f));
  w.on('status', (s) => statuses.push(s));
  w.on('error', () => undefined);
  cleanups.push(() => w.close());
  if (start) await w.start();
  return { w, files, statuses, names: () => files.map((f) => f.relativePath).sort() };
}

describe('glob matcher', () => {
  test('file-name patterns, path patterns, classes and alternatives', () => {
    const m = (p: string, s: string) => {
      const c = compileGlob(p, false);
      return c.re.test(c.baseOnly ? s.slice(s.lastIndexOf('/') + 1) : s);
    };
    assert.equal(m('*.csv', 'a.csv'), true);
    assert.equal(m('*.csv', 'run1/a.csv'), true);
    assert.equal(m('*.csv', 'a.csv.tmp'), false);
    assert.equal(m('run*/*.csv', 'run1/a.csv'), true);
    assert.equal(m('run*/*.csv', 'run1/x/a.csv'), false);
    assert.equal(m('run*/**/*.csv', 'run1/x/y/a.csv'), true);
    assert.equal(m('**/*.csv', 'a.csv'), true);
    assert.equal(m('archive/**', 'archive/'), true);
    assert.equal(m('plate?.{csv,txt}', 'plate1.txt'), true);
    assert.equal(m('plate?.{csv,txt}', 'plate12.txt'), false);
    assert.equal(m('[!a]*.csv', 'b.csv'), true);
    assert.equal(m('[!a]*.csv', 'a.csv'), false);
    assert.equal(m('~$*', '~$report.xlsx'), true);
    assert.equal(compileGlob('*.CSV', true).re.test('a.csv'), true);
  });

  test('UNC detection', () => {
    assert.equal(isUncPath('\\\\server\\share\\dir'), true);
    assert.equal(isUncPath('//server/share'), true);
    assert.equal(isUncPath('/data/share'), false);
    assert.equal(isUncPath('C:\\data'), false);
  });
});

describe('FolderWatcher', () => {
  test('bad settings are refused with a clear message', () => {
    assert.throws(() => new FolderWatcher({ folder: '' }), /folder is not set/);
    assert.throws(() => new FolderWatcher({ folder: 'relative/dir' }), /absolute path/);
    assert.throws(() => new FolderWatcher({ folder: '/x/${NOPE}' }), /environment variable/);
    assert.throws(() => new FolderWatcher({ folder: '/x', stabilityMs: -1 }), /stabilityMs/);
    assert.throws(() => new FolderWatcher({ folder: '/x', postAction: 'move' }), /archive folder is not set/);
    assert.throws(
      () => new FolderWatcher({ folder: '/x', recursive: true, postAction: 'move', archiveFolder: '/x/done' }),
      /inside the watched folder/,
    );
    // Inside the tree is fine when excluded, or when sub-folders are not watched.
    new FolderWatcher({ folder: '/x', recursive: true, exclude: 'done/**', postAction: 'move', archiveFolder: '/x/done' });
    new FolderWatcher({ folder: '/x', postAction: 'move', archiveFolder: '/x/done' });
    assert.equal(new FolderWatcher({ folder: '//server/share/x' }).mode, 'poll');
    assert.equal(new FolderWatcher({ folder: '/x' }).mode, 'events');
  });

  test('errors carry a message id and its values, so a node can tell them in its language', () => {
    assert.throws(
      () => new FolderWatcher({ folder: 'relative/dir' }),
      (e: unknown) =>
        e instanceof LabError &&
        e.code === 'BAD_INPUT' &&
        e.key === 'folder.notAbsolute' &&
        e.vars.folder === 'relative/dir' &&
        e.message === 'folder must be an absolute path, got "relative/dir"',
    );
    assert.throws(
      () => new FolderWatcher({ folder: '/x', include: '[z-a].csv' }),
      (e: unknown) => e instanceof LabError && e.key === 'folder.badPattern' && e.vars.pattern === '[z-a].csv' && /^pattern "\[z-a\]\.csv" is not a valid glob: /.test(e.message),
    );
  });

  test('the errors.folder catalogue: de and ja have the keys and placeholders of en-US', () => {
    const root = path.resolve(__dirname, '..', '..');
    const section = (lang: string) =>
      JSON.parse(fs.readFileSync(path.join(root, 'locales', lang, 'lab-messages.json'), 'utf8'))['lab-messages'].errors.folder as Record<string, string>;
    const placeholders = (text: string) => (text.match(/__\w+?__/g) ?? []).sort();
    const en = section('en-US');
    assert.ok(Object.keys(en).length > 0);
    for (const lang of ['de', 'ja']) {
      const cat = section(lang);
      assert.deepEqual(Object.keys(cat).sort(), Object.keys(en).sort(), `${lang}: same keys`);
      for (const [k, text] of Object.entries(en)) assert.deepEqual(placeholders(cat[k]), placeholders(text), `${lang}: placeholders of ${k}`);
    }
  });

  test('a file half-written at start-up is sent only after it stops growing', async () => {
    const dir = tmpDir();
    const f = path.join(dir, 'growing.csv');
    fs.writeFileSync(f, 'a,b\n');
    const h = await startWatcher({ folder: dir });
    const t0 = Date.now();
    for (let i = 0; i < 8; i++) {
      await sleep(100);
      fs.appendFileSync(f, `${i},${i}\n`);
    }
    const lastWrite = Date.now();
    assert.equal(h.files.length, 0, 'sent while still growing');
    await waitFor(() => h.files.length === 1, 3000, 'the file');
    const sentAt = Date.now();
    assert.ok(sentAt - lastWrite >= STABLE - 30, `sent ${sentAt - lastWrite} ms after the last write`);
    assert.ok(sentAt - t0 >= 800);
    assert.equal(h.files[0].size, fs.statSync(f).size);
    await sleep(STABLE * 2);
    assert.equal(h.files.length, 1);
  });

  test('files written while watching are sent once each, when stable', async () => {
    const dir = tmpDir();
    const h = await startWatcher({ folder: dir });
    fs.writeFileSync(path.join(dir, 'a.csv'), 'x'.repeat(100));
    fs.writeFileSync(path.join(dir, 'b.txt'), 'y');
    await waitFor(() => h.files.length === 2, 3000, 'two files');
    const a = h.files.find((f) => f.name === 'a.csv') as WatchedFile;
    assert.equal(a.size, 100);
    assert.equal(a.path, path.join(dir, 'a.csv'));
    assert.equal(a.relativePath, 'a.csv');
    assert.equal(a.deliveryCount, 1);
    assert.match(a.id, /^[0-9a-f]{16}$/);
    await sleep(STABLE * 3);
    assert.equal(h.files.length, 2, 'sent twice');
    assert.equal(h.w.getStatus().awaitingAck, 2);
    assert.equal(h.w.getStatus().files, 2);
  });

  test('include / exclude patterns, temp files and zero-byte files', async () => {
    const dir = tmpDir();
    const h = await startWatcher({ folder: dir, include: '*.csv, *.txt', exclude: 'skip*' });
    for (const n of ['keep.csv', 'keep.txt', 'no.xlsx', 'skip-me.csv', '~$lock.csv', 'x.tmp', 'y.part', '.hidden.csv', 'Thumbs.db', 'z.csv.crdownload', 'f.lock']) {
      fs.writeFileSync(path.join(dir, n), 'data');
    }
    fs.writeFileSync(path.join(dir, 'empty.csv'), '');
    await waitFor(() => h.files.length >= 2, 3000, 'files');
    await sleep(STABLE * 3);
    assert.deepEqual(h.names(), ['keep.csv', 'keep.txt']);
    // The zero-byte file is sent once it has content.
    fs.writeFileSync(path.join(dir, 'empty.csv'), 'now full');
    await waitFor(() => h.files.length === 3, 3000, 'the no-longer-empty file');
    assert.equal(h.files[2].name, 'empty.csv');
    assert.equal(h.files[2].size, 8);
  });

  test('zero-byte files are sent after the window when emitEmptyFiles is on', async () => {
    const dir = tmpDir();
    const h = await startWatcher({ folder: dir, emitEmptyFiles: true });
    fs.writeFileSync(path.join(dir, 'marker.done'), '');
    await waitFor(() => h.files.length === 1, 3000, 'the empty file');
    assert.equal(h.files[0].size, 0);
  });

  test('recursive watches sub-folders; non-recursive does not', async () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'run1', 'plate'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'archive'));
    fs.writeFileSync(path.join(dir, 'run1', 'plate', 'old.csv'), 'old');
    fs.writeFileSync(path.join(dir, 'archive', 'ignored.csv'), 'old');
    const rec = await startWatcher({ folder: dir, recursive: true, exclude: 'archive/**' });
    const flat = await startWatcher({ folder: dir });
    fs.mkdirSync(path.join(dir, 'run2'));
    fs.writeFileSync(path.join(dir, 'run2', 'new.csv'), 'new');
    fs.writeFileSync(path.join(dir, 'archive', 'new-ignored.csv'), 'new');
    fs.writeFileSync(path.join(dir, 'top.csv'), 'top');
    await waitFor(() => rec.files.length === 3, 4000, 'three files');
    await sleep(STABLE * 2);
    assert.deepEqual(rec.names(), ['run1/plate/old.csv', 'run2/new.csv', 'top.csv']);
    assert.deepEqual(flat.names(), ['top.csv']);
  });

  test('poll mode finds existing and new files without fs events', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'before.csv'), '1');
    const h = await startWatcher({ folder: dir, mode: 'poll', pollIntervalMs: 100, recursive: true });
    assert.equal(h.w.mode, 'poll');
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'sub', 'after.csv'), '22');
    await waitFor(() => h.files.length === 2, 4000, 'two files');
    assert.deepEqual(h.names(), ['before.csv', 'sub/after.csv']);
    await sleep(400);
    assert.equal(h.files.length, 2);
  });

  test('restart: acknowledged files are never sent again, unacknowledged ones are, changed ones are', async () => {
    const dir = tmpDir();
    const state = path.join(tmpDir(), 'ledger.jsonl');
    for (const n of ['a.csv', 'b.csv', 'c.csv']) fs.writeFileSync(path.join(dir, n), n);
    const h1 = await startWatcher({ folder: dir, ledgerFile: state });
    await waitFor(() => h1.files.length === 3, 3000, 'three files');
    const a = h1.files.find((f) => f.name === 'a.csv') as WatchedFile;
    const c = h1.files.find((f) => f.name === 'c.csv') as WatchedFile;
    assert.equal((await h1.w.ack(a)).outcome, 'done');
    assert.equal((await h1.w.ack({ relativePath: 'c.csv', id: c.id })).outcome, 'done');
    assert.equal(h1.w.ledgerEntry('a.csv')?.state, 'done');
    assert.equal(h1.w.ledgerEntry('b.csv')?.state, 'emitted');
    await h1.w.close();

    const h2 = await startWatcher({ folder: dir, ledgerFile: state });
    await waitFor(() => h2.files.length === 1, 3000, 'the unacknowledged file');
    await sleep(STABLE * 2);
    assert.deepEqual(h2.names(), ['b.csv']);
    assert.equal(h2.files[0].deliveryCount, 2);
    // New content under a done name is a new file.
    fs.writeFileSync(path.join(dir, 'c.csv'), 'c, version 2');
    await waitFor(() => h2.files.length === 2, 3000, 'the changed file');
    assert.equal(h2.files[1].name, 'c.csv');
    assert.equal(h2.files[1].deliveryCount, 1);
    assert.notEqual(h2.files[1].id, c.id);
    // An ack with the old id is stale and does nothing.
    assert.equal((await h2.w.ack(c)).outcome, 'stale');
    await h2.w.close();

    const h3 = await startWatcher({ folder: dir, ledgerFile: state });
    await waitFor(() => h3.files.length === 2, 3000, 'b and c again');
    await sleep(STABLE * 2);
    assert.deepEqual(h3.names(), ['b.csv', 'c.csv']);
  });

  test('ack moves to the archive (keeping sub-folders, suffix on clash); nothing moves without ack', async () => {
    const dir = tmpDir();
    const archive = path.join(tmpDir(), 'archive');
    fs.mkdirSync(path.join(dir, 'run1'));
    fs.writeFileSync(path.join(dir, 'run1', 'p.csv'), 'plate');
    fs.writeFileSync(path.join(dir, 'q.csv'), 'q');
    fs.mkdirSync(path.join(archive, 'run1'), { recursive: true });
    fs.writeFileSync(path.join(archive, 'run1', 'p.csv'), 'an older plate');
    const h = await startWatcher({ folder: dir, recursive: true, postAction: 'move', archiveFolder: archive });
    await waitFor(() => h.files.length === 2, 3000, 'two files');
    await sleep(STABLE * 2);
    assert.ok(fs.existsSync(path.join(dir, 'run1', 'p.csv')), 'moved without an ack');
    assert.ok(fs.existsSync(path.join(dir, 'q.csv')), 'moved without an ack');
    const p = h.files.find((f) => f.name === 'p.csv') as WatchedFile;
    const r = await h.w.ack(p);
    assert.equal(r.outcome, 'done');
    assert.equal(r.archivedTo, path.join(archive, 'run1', 'p-1.csv'));
    assert.equal(fs.readFileSync(path.join(archive, 'run1', 'p-1.csv'), 'utf8'), 'plate');
    assert.equal(fs.readFileSync(path.join(archive, 'run1', 'p.csv'), 'utf8'), 'an older plate');
    assert.ok(!fs.existsSync(path.join(dir, 'run1', 'p.csv')));
    assert.ok(fs.existsSync(path.join(dir, 'q.csv')), 'q moved without its ack');
    assert.equal((await h.w.ack(p)).outcome, 'already-done');
    await h.w.rescan();
    await sleep(STABLE * 2);
    assert.equal(h.files.length, 2);
  });

  test('ack deletes with postAction delete; a failure keeps the file and does not resend it', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'ok.csv'), 'ok');
    fs.writeFileSync(path.join(dir, 'bad.csv'), 'bad');
    const h = await startWatcher({ folder: dir, postAction: 'delete', rescanIntervalMs: 200 });
    await waitFor(() => h.files.length === 2, 3000, 'two files');
    const ok = h.files.find((f) => f.name === 'ok.csv') as WatchedFile;
    const bad = h.files.find((f) => f.name === 'bad.csv') as WatchedFile;
    await h.w.ack(ok);
    assert.ok(!fs.existsSync(ok.path), 'not deleted');
    assert.equal((await h.w.ack(bad, { ok: false, error: 'parser failed' })).outcome, 'failed');
    assert.ok(fs.existsSync(bad.path), 'a failed file was deleted');
    assert.equal(h.w.ledgerEntry('bad.csv')?.state, 'failed');
    assert.equal(h.w.ledgerEntry('bad.csv')?.error, 'parser failed');
    await sleep(STABLE * 3); // several rescans
    assert.equal(h.files.length, 2, 'a failed file was sent again without changing');
    fs.appendFileSync(bad.path, ' fixed');
    await waitFor(() => h.files.length === 3, 3000, 'the corrected file');
    assert.equal(h.files[2].name, 'bad.csv');
  });

  test('a post-action that failed stays pending and is retried after a restart', async () => {
    const dir = tmpDir();
    const state = path.join(tmpDir(), 'ledger.jsonl');
    const blocker = path.join(tmpDir(), 'blocked');
    fs.writeFileSync(blocker, 'a file where the archive folder should be');
    const archive = path.join(blocker, 'archive');
    fs.writeFileSync(path.join(dir, 'r.csv'), 'run');
    const h1 = await startWatcher({ folder: dir, ledgerFile: state, postAction: 'move', archiveFolder: archive });
    await waitFor(() => h1.files.length === 1, 3000, 'the file');
    await assert.rejects(h1.w.ack(h1.files[0]), (e: unknown) => e instanceof LabError && e.key === 'folder.cannotCreateArchive' && /^cannot move /.test(e.message));
    assert.equal(h1.w.ledgerEntry('r.csv')?.state, 'acked');
    assert.ok(fs.existsSync(path.join(dir, 'r.csv')));
    await h1.w.close();

    fs.rmSync(blocker);
    const h2 = await startWatcher({ folder: dir, ledgerFile: state, postAction: 'move', archiveFolder: archive });
    await waitFor(() => fs.existsSync(path.join(archive, 'r.csv')), 3000, 'the retried move');
    assert.ok(!fs.existsSync(path.join(dir, 'r.csv')));
    await sleep(STABLE * 2);
    assert.equal(h2.files.length, 0, 'an acknowledged file was sent again');
  });

  test('the periodic rescan catches a file the events did not report', async () => {
    const dir = tmpDir();
    const h = await startWatcher({ folder: dir, rescanIntervalMs: 600 });
    h.w.setEventsPaused(true);
    fs.writeFileSync(path.join(dir, 'missed.csv'), 'missed');
    await sleep(100);
    h.w.setEventsPaused(false);
    assert.equal(h.files.length, 0);
    await waitFor(() => h.files.length === 1, 3000, 'the missed file');
    assert.equal(h.files[0].name, 'missed.csv');
    assert.equal(h.w.getStatus().recovered, 1);
  });

  test('a missing folder is waited for; a folder deleted and re-created keeps working', async () => {
    const parent = tmpDir();
    const dir = path.join(parent, 'later');
    const h = await startWatcher({ folder: dir });
    assert.equal(h.w.getStatus().phase, 'waiting');
    assert.ok(h.statuses.some((s) => s.phase === 'waiting'));
    await sleep(300);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'first.csv'), '1');
    await waitFor(() => h.files.length === 1, 4000, 'the first file');
    assert.equal(h.w.getStatus().phase, 'watching');

    fs.rmSync(dir, { recursive: true });
    await waitFor(() => h.w.getStatus().phase === 'waiting', 3000, 'waiting again');
    fs.mkdirSync(dir);
    await waitFor(() => h.w.getStatus().phase === 'watching', 3000, 'watching again');
    fs.writeFileSync(path.join(dir, 'second.csv'), '22');
    await waitFor(() => h.files.length === 2, 4000, 'the second file');
    assert.equal(h.files[1].name, 'second.csv');
  });

  test('a folder that is a file gives an error status', async () => {
    const parent = tmpDir();
    const notDir = path.join(parent, 'file.txt');
    fs.writeFileSync(notDir, 'x');
    const h = await startWatcher({ folder: notDir });
    const s = h.w.getStatus();
    assert.equal(s.phase, 'error');
    assert.match(s.lastProblem?.message ?? '', /is not a folder/);
    assert.ok(s.lastProblem instanceof LabError && s.lastProblem.key === 'folder.notAFolder', 'the problem keeps its message id');
    assert.deepEqual(s.lastProblem.vars, { folder: notDir });
  });

  test('crash: after SIGKILL a new process sends exactly the unacknowledged files again', async () => {
    const dir = tmpDir();
    const state = path.join(tmpDir(), 'ledger.jsonl');
    for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(dir, `f${i}.csv`), `file ${i}`);
    const modulePath = require.resolve('../nodes/clients/folder-watcher');
    const script = `
      const { FolderWatcher } = require(${JSON.stringify(modulePath)});
      const w = new FolderWatcher({ folder: ${JSON.stringify(dir)}, ledgerFile: ${JSON.stringify(state)}, stabilityMs: 150 });
      const sent = new Map();
      w.on('file', (f) => { sent.set(f.relativePath, f); process.stdout.write('FILE ' + f.relativePath + '\\n'); });
      process.stdin.setEncoding('utf8');
      let buf = '';
      process.stdin.on('data', async (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\\n')) >= 0) {
          const name = buf.slice(0, i); buf = buf.slice(i + 1);
          const r = await w.ack(sent.get(name));
          process.stdout.write('ACK ' + name + ' ' + r.outcome + '\\n');
        }
      });
      w.start();
    `;
    function run(): { child: ChildProcess; lines: string[] } {
      const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
      const lines: string[] = [];
      let out = '';
      (child.stdout as NodeJS.ReadableStream).on('data', (d: Buffer) => {
        out += d.toString();
        const parts = out.split('\n');
        out = parts.pop() as string;
        lines.push(...parts);
      });
      cleanups.push(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      return { child, lines };
    }
    const first = run();
    await waitFor(() => first.lines.filter((l) => l.startsWith('FILE ')).length === 6, 8000, 'six files from the first process');
    (first.child.stdin as NodeJS.WritableStream).write('f1.csv\nf4.csv\n');
    await waitFor(() => first.lines.filter((l) => l.startsWith('ACK ')).length === 2, 5000, 'two acks');
    assert.deepEqual(first.lines.filter((l) => l.startsWith('ACK ')).sort(), ['ACK f1.csv done', 'ACK f4.csv done']);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    assert.equal(first.child.signalCode, 'SIGKILL');

    const second = run();
    await waitFor(() => second.lines.filter((l) => l.startsWith('FILE ')).length >= 4, 8000, 'the unacknowledged files');
    await sleep(600);
    const again = second.lines.filter((l) => l.startsWith('FILE ')).map((l) => l.slice(5)).sort();
    assert.deepEqual(again, ['f0.csv', 'f2.csv', 'f3.csv', 'f5.csv']);
    second.child.kill('SIGKILL');
    await new Promise((r) => second.child.once('exit', r));
  });
});

describe('FolderWatcher: the journey after a failure', () => {
  const fast = { baseMs: 150, maxMs: 600, giveUpAfterMs: 60_000 };

  test('a transient failure is sent again after the backoff, with the attempt counted; then done', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'a.csv'), 'a');
    const h = await startWatcher({ folder: dir, retry: fast, rescanIntervalMs: 100 });
    await waitFor(() => h.files.length === 1, 3000, 'the file');
    assert.equal(h.files[0].attempt, 1);
    const r = await h.w.ack(h.files[0], { ok: false, failure: { code: 'NETWORK', message: 'socket hang up', at: Date.now() } });
    assert.equal(r.outcome, 'retrying');
    assert.ok(r.nextAttemptAt! > Date.now() - 5, 'a time for the next attempt');
    assert.equal(h.w.getStatus().retrying, 1);
    await waitFor(() => h.files.length === 2, 5000, 'the second attempt');
    assert.equal(h.files[1].attempt, 2);
    assert.equal(h.files[1].id, h.files[0].id, 'the same version of the file');
    const r2 = await h.w.ack(h.files[1], { ok: false, failure: { code: 'HTTP', status: 503, message: 'maintenance', at: Date.now() } });
    assert.equal(r2.outcome, 'retrying');
    await waitFor(() => h.files.length === 3, 5000, 'the third attempt');
    assert.equal(h.files[2].attempt, 3);
    assert.equal((await h.w.ack(h.files[2])).outcome, 'done');
    assert.equal(h.w.ledgerEntry('a.csv')?.state, 'done');
    await sleep(fast.maxMs * 2);
    assert.equal(h.files.length, 3, 'nothing sent after done');
  });

  test('a late failure report for an attempt a newer one replaced is ignored', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'l.csv'), 'l');
    const h = await startWatcher({ folder: dir, retry: fast });
    await waitFor(() => h.files.length === 1, 3000, 'the file');
    await h.w.ack(h.files[0], { ok: false, failure: { code: 'TIMEOUT', message: 't', at: Date.now() } });
    const due = h.w.ledgerEntry('l.csv')?.nextAttemptAt;
    // The same attempt reported twice (a Catch node and a failed output both wired back): no change.
    assert.equal((await h.w.ack(h.files[0], { ok: false, failure: { code: 'TASK_FAILED', message: 'again', at: Date.now() } })).outcome, 'retrying');
    assert.equal(h.w.ledgerEntry('l.csv')?.failures, 1);
    assert.equal(h.w.ledgerEntry('l.csv')?.nextAttemptAt, due);
    await waitFor(() => h.files.length === 2, 5000, 'the second attempt');
    assert.equal((await h.w.ack({ ...h.files[0] }, { ok: false, failure: { code: 'TIMEOUT', message: 'late', at: Date.now() } })).outcome, 'stale');
    assert.equal(h.w.ledgerEntry('l.csv')?.state, 'emitted');
  });

  test('a permanent failure is dead-lettered with its reason, moved to the failed folder, never sent again — until retried by id; skip marks done by hand', async () => {
    const root = tmpDir();
    const dir = path.join(root, 'in');
    const failed = path.join(root, 'failed');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'bad.csv'), 'bad');
    fs.writeFileSync(path.join(dir, 'worse.csv'), 'worse');
    const state = path.join(root, 'state', 'ledger.jsonl');
    const h = await startWatcher({ folder: dir, retry: fast, failedFolder: failed, ledgerFile: state, rescanIntervalMs: 100 });
    await waitFor(() => h.files.length === 2, 3000, 'two files');
    const bad = h.files.find((f) => f.name === 'bad.csv')!;
    const worse = h.files.find((f) => f.name === 'worse.csv')!;
    const reason = { code: 'TASK_FAILED', message: 'Output file processing failed (simulated): row 3', node: { id: 'p1', type: 'benchling-poll-task' }, errorFile: { id: 'e1', downloadURL: 'http://x/e1' }, at: Date.now() };
    const r = await h.w.ack(bad, { ok: false, failure: reason });
    assert.equal(r.outcome, 'failed');
    assert.equal(r.failedTo, path.join(failed, 'bad.csv'));
    assert.ok(fs.existsSync(path.join(failed, 'bad.csv')) && !fs.existsSync(bad.path), 'moved to the failed folder');
    const e = h.w.ledgerEntry('bad.csv')!;
    assert.equal(e.state, 'failed');
    assert.deepEqual(e.failure, reason);
    assert.equal(e.failures, 1);
    await h.w.ack(worse, { ok: false, failure: { code: 'BAD_INPUT', message: 'no run id', at: Date.now() } });
    await sleep(fast.maxMs * 2); // rescans and retry timers come and go
    assert.equal(h.files.length, 2, 'a dead-letter is never sent again on its own');
    assert.equal(h.w.getStatus().deadLettered, 2);
    await h.w.close();

    // Across a restart it stays dead-lettered, with its reason.
    const h2 = await startWatcher({ folder: dir, retry: fast, failedFolder: failed, ledgerFile: state, rescanIntervalMs: 100 });
    await sleep(fast.maxMs);
    assert.equal(h2.files.length, 0, 'dead-letters are not sent after a restart');
    assert.equal(h2.w.ledgerEntry('bad.csv')?.failure?.message, reason.message);

    const retried = await h2.w.retry(bad.id);
    assert.equal(retried.outcome, 'retrying');
    assert.ok(fs.existsSync(bad.path), 'moved back into the watched folder');
    await waitFor(() => h2.files.length === 1, 3000, 'the retried file');
    assert.equal(h2.files[0].attempt, 2, 'a new attempt is recorded');
    assert.equal((await h2.w.ack(h2.files[0])).outcome, 'done');

    const skipped = await h2.w.skip('worse.csv', 'ops@lab');
    assert.equal(skipped.outcome, 'done');
    assert.deepEqual(h2.w.ledgerEntry('worse.csv')?.skipped?.by, 'ops@lab');
    assert.equal((await h2.w.retry('nothing-like-this.csv')).outcome, 'unknown');
  });

  test('transient failures for longer than the give-up window dead-letter the file', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'g.csv'), 'g');
    const h = await startWatcher({ folder: dir, retry: { baseMs: 50, maxMs: 50, giveUpAfterMs: 300 } });
    await waitFor(() => h.files.length === 1, 3000, 'the file');
    let last = await h.w.ack(h.files[0], { ok: false, failure: { code: 'NETWORK', message: 'down', at: Date.now() } });
    const t0 = Date.now();
    while (last.outcome === 'retrying') {
      const n = h.files.length;
      await waitFor(() => h.files.length > n, 3000, 'another attempt');
      last = await h.w.ack(h.files[h.files.length - 1], { ok: false, failure: { code: 'NETWORK', message: 'still down', at: Date.now() } });
      assert.ok(Date.now() - t0 < 5000, 'gave up in time');
    }
    assert.equal(last.outcome, 'failed');
    assert.equal(h.w.ledgerEntry('g.csv')?.failure?.message, 'still down');
  });

  test('finished journeys go to the history with what the nodes noted; the live ledger forgets archived files', async () => {
    const root = tmpDir();
    const dir = path.join(root, 'in');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'h.csv'), 'h');
    const hist = path.join(root, 'history');
    const h = await startWatcher({ folder: dir, postAction: 'move', archiveFolder: path.join(root, 'archive'), historyDir: hist, rescanIntervalMs: 100 });
    await waitFor(() => h.files.length === 1, 3000, 'the file');
    h.w.note(h.files[0].id, { blobId: 'blob-1', uploadedAt: 1 });
    h.w.note(h.files[0].id, { processorId: 'aop_1', taskId: 't1' });
    await h.w.ack(h.files[0]);
    const done = [...h.w.finishedJourneys()];
    assert.equal(done.length, 1);
    assert.equal(done[0].relativePath, 'h.csv');
    assert.deepEqual(done[0].steps, { blobId: 'blob-1', uploadedAt: 1, processorId: 'aop_1', taskId: 't1' });
    await waitFor(() => [...h.w.journeys()].length === 0, 3000, 'the live ledger to forget the archived file');
  });
});
