/**
 * The operator's file list on its own (nodes/lib/journey/query.ts, history-index.ts): paging with
 * the cursor (no file twice, none lost, live files first, then the history newest first and merged
 * across watchers), filters by state and search text, counts by state kept as the history grows,
 * the backwards tail reader (lines across chunk boundaries, a line being written), and the
 * refusals of unusable queries.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  countDayFile,
  countFiles,
  HistoryRecord,
  JourneyHistory,
  JourneyRecord,
  lineIsDone,
  linesBackward,
  listFiles,
  OperatorWatcher,
  parseFileQuery,
  PendingFile,
  WatcherSource,
} from '../nodes/lib/journey';
import { LabError } from '../nodes/lib/http/errors';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'labwire-query-'));
  dirs.push(d);
  return d;
}

const DAY = 24 * 3600_000;
const T0 = Date.UTC(2026, 11, 1, 12);

class FakeWatcher implements OperatorWatcher {
  live = new Map<string, JourneyRecord>();
  pending: PendingFile[] = [];
  constructor(
    readonly folder: string,
    readonly history: JourneyHistory<HistoryRecord> | null,
  ) {}
  journeys(): Iterable<[string, JourneyRecord]> {
    return this.live.entries();
  }
  pendingFiles(): PendingFile[] {
    return this.pending;
  }
  historyStore(): JourneyHistory<HistoryRecord> | null {
    return this.history;
  }
}

function rec(id: string, state: JourneyRecord['state'], at: number, extra: Partial<JourneyRecord> = {}): JourneyRecord {
  return { id, size: 10, mtimeMs: at, state, emitCount: 1, seenAt: at - 100, firstSentAt: at, emittedAt: at, ...extra };
}

/** A history of `n` journeys, `perDay` a day, the newest at T0; every 10th ended without done. */
function fillHistory(h: JourneyHistory<HistoryRecord>, folder: string, n: number, perDay: number, tag: string): void {
  for (let i = 0; i < n; i++) {
    const back = n - 1 - i;
    const at = T0 - Math.floor(back / perDay) * DAY - (back % perDay) * 1000;
    const rel = `${tag}-${String(i).padStart(5, '0')}.csv`;
    const done = i % 10 !== 0;
    const r: HistoryRecord = {
      ...rec(`${tag}${String(i).padStart(6, '0')}`, done ? 'done' : 'failed', at, {
        doneAt: done ? at : undefined,
        steps: { blobId: `blob_${tag}${i}`, processorId: `proc_${tag}${i}`, assayRunId: `run_${i % 7}` },
        failure: done ? undefined : { code: 'TASK_FAILED', message: 'Output file processing failed (simulated)', at },
      }),
      relativePath: rel,
      path: path.join(folder, rel),
      folder,
      gone: done ? undefined : at,
    };
    h.append(r, at);
  }
}

async function allPages(sources: WatcherSource[], query: Record<string, string>): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await listFiles(sources, parseFileQuery({ ...query, ...(cursor ? { cursor } : {}) }));
    ids.push(...page.files.map((f) => f.id));
    cursor = page.nextCursor;
    pages++;
    assert.ok(pages < 1000, 'paging ends');
  } while (cursor);
  return { ids, pages };
}

describe('operator file list', () => {
  test('pages through waiting, live and history files: newest first, each once, with counts by state', async () => {
    const dir = tmp();
    const folder = path.join(dir, 'in');
    const h = new JourneyHistory<HistoryRecord>(path.join(dir, 'history'), 'journeys');
    fillHistory(h, folder, 250, 100, 'a');
    const w = new FakeWatcher(folder, h);
    w.pending = [{ id: 'pend1', name: 'new.csv', path: path.join(folder, 'new.csv'), relativePath: 'new.csv', size: 3, mtimeMs: T0, seenAt: T0 + 5000 }];
    w.live.set('x1.csv', rec('live1', 'emitted', T0 + 1000));
    w.live.set('x2.csv', rec('live2', 'retrying', T0 + 2000, { nextAttemptAt: T0 + 60_000, failure: { code: 'NETWORK', message: 'socket hang up', at: T0 + 2100 } }));
    w.live.set('x3.csv', rec('live3', 'failed', T0 + 3000, { failure: { code: 'TASK_FAILED', status: undefined, message: 'bad rows', at: T0 + 3100, errorFile: { id: 'ef', name: 'errors.csv', downloadURL: 'https://x/errors.csv' } } }));
    w.live.set('x4.csv', rec('live4', 'done', T0 + 4000, { doneAt: T0 + 4000 })); // in the history too
    const sources = [{ id: 'w1', name: 'Plate reader', watcher: w }];

    const first = await listFiles(sources, parseFileQuery({ limit: '3' }));
    assert.deepEqual(first.files.map((f) => f.id), ['pend1', 'live3', 'live2']);
    assert.deepEqual(first.counts, { waiting: 1, 'in-progress': 1, retrying: 1, done: 225, failed: 25 + 1 });
    assert.equal(first.files[0].state, 'waiting');
    assert.equal(first.files[1].state, 'failed');
    assert.equal(first.files[1].failure?.errorFile?.downloadURL, 'https://x/errors.csv');
    assert.equal(first.files[2].state, 'retrying');
    assert.equal(first.files[2].nextAttemptAt, new Date(T0 + 60_000).toISOString());
    assert.deepEqual(first.files[2].watcher, { id: 'w1', name: 'Plate reader' });
    assert.ok(first.nextCursor);

    const { ids } = await allPages(sources, { limit: '7' });
    assert.equal(ids.length, 1 + 3 + 250);
    assert.equal(new Set(ids).size, ids.length, 'no file twice');
    assert.deepEqual(ids.slice(0, 4), ['pend1', 'live3', 'live2', 'live1']);
    assert.equal(ids[4], 'a000249', 'then the newest finished one');
    assert.equal(ids[ids.length - 1], 'a000000', 'the oldest last');
    const hist = ids.slice(4);
    assert.deepEqual(hist, [...hist].sort().reverse(), 'history newest first across day files');
    h.close();
  });

  test('a page of 100 from a large history reads only the end of it', async () => {
    const dir = tmp();
    const h = new JourneyHistory<HistoryRecord>(path.join(dir, 'history'), 'journeys');
    fillHistory(h, path.join(dir, 'in'), 5000, 2000, 'b');
    const sources = [{ id: 'w', name: '', watcher: new FakeWatcher(path.join(dir, 'in'), h) }];
    await countFiles(sources);
    const t = process.hrtime.bigint();
    const page = await listFiles(sources, parseFileQuery({ limit: '100' }));
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    assert.equal(page.files.length, 100);
    assert.equal(page.files[0].id, 'b004999');
    assert.equal(page.counts.done + page.counts.failed, 5000);
    assert.ok(ms < 1000, `page in ${ms} ms`); // generous: shared CI cores; the bench measures it properly
    h.close();
  });

  test('filters: state and search text (name, run id, blob id, processor id), paged', async () => {
    const dir = tmp();
    const folder = path.join(dir, 'in');
    const h = new JourneyHistory<HistoryRecord>(path.join(dir, 'history'), 'journeys');
    fillHistory(h, folder, 120, 50, 'c');
    const w = new FakeWatcher(folder, h);
    w.live.set('x3.csv', rec('live3', 'failed', T0 + 3000, { steps: { assayRunId: 'run_special' }, failure: { code: 'X', message: 'm', at: 1 } }));
    w.live.set('x1.csv', rec('live1', 'emitted', T0 + 1000));
    const sources = [{ id: 'w', name: '', watcher: w }];

    const failed = await allPages(sources, { state: 'failed', limit: '5' });
    assert.deepEqual(failed.ids[0], 'live3');
    assert.equal(failed.ids.length, 1 + 12);
    for (const id of failed.ids.slice(1)) assert.equal(Number(id.slice(1)) % 10, 0);

    const inProgress = await listFiles(sources, parseFileQuery({ state: 'in-progress' }));
    assert.deepEqual(inProgress.files.map((f) => f.id), ['live1']);
    assert.equal(inProgress.nextCursor, null);
    assert.equal(inProgress.counts.done, 108, 'counts are not filtered');

    const byRun = await allPages(sources, { q: 'RUN_SPECIAL' });
    assert.deepEqual(byRun.ids, ['live3']);
    const byBlob = await listFiles(sources, parseFileQuery({ q: 'blob_c117' }));
    assert.deepEqual(byBlob.files.map((f) => f.id), ['c000117']);
    assert.equal(byBlob.files[0].blobId, 'blob_c117');
    const byProc = await listFiles(sources, parseFileQuery({ q: 'proc_c3' }));
    assert.deepEqual(byProc.files.map((f) => f.id).sort(), ['c000003', 'c000030', 'c000031', 'c000032', 'c000033', 'c000034', 'c000035', 'c000036', 'c000037', 'c000038', 'c000039'].sort());
    const byName = await listFiles(sources, parseFileQuery({ q: 'c-00042.csv' }));
    assert.deepEqual(byName.files.map((f) => f.name), ['c-00042.csv']);
    const byRunHist = await allPages(sources, { q: 'run_3', state: 'done', limit: '4' });
    assert.ok(byRunHist.ids.length > 10);
    h.close();
  });

  test('two watchers: the histories merge newest first, each paged by its own position', async () => {
    const dir = tmp();
    const h1 = new JourneyHistory<HistoryRecord>(path.join(dir, 'h1'), 'journeys');
    const h2 = new JourneyHistory<HistoryRecord>(path.join(dir, 'h2'), 'journeys');
    fillHistory(h1, path.join(dir, 'a'), 40, 15, 'p');
    fillHistory(h2, path.join(dir, 'b'), 30, 15, 'q');
    const sources = [
      { id: 'w1', name: 'one', watcher: new FakeWatcher(path.join(dir, 'a'), h1) },
      { id: 'w2', name: 'two', watcher: new FakeWatcher(path.join(dir, 'b'), h2) },
    ];
    const { ids } = await allPages(sources, { limit: '6' });
    assert.equal(ids.length, 70);
    assert.equal(new Set(ids).size, 70);
    const all = (await listFiles(sources, parseFileQuery({ limit: '500' }))).files;
    assert.deepEqual(all.map((f) => f.id), ids);
    const times = all.map((f) => Date.parse(f.stages.stable as string));
    for (let i = 1; i < times.length; i++) assert.ok(times[i] <= times[i - 1], 'newest first');
    h1.close();
    h2.close();
  });

  test('counts follow the history as it grows and as days are pruned', async () => {
    const dir = tmp();
    const h = new JourneyHistory<HistoryRecord>(path.join(dir, 'history'), 'journeys', 10 * DAY);
    fillHistory(h, path.join(dir, 'in'), 30, 10, 'd');
    const sources = [{ id: 'w', name: '', watcher: new FakeWatcher(path.join(dir, 'in'), h) }];
    assert.deepEqual(await countFiles(sources), { waiting: 0, 'in-progress': 0, retrying: 0, done: 27, failed: 3 });
    h.append({ ...rec('new1', 'done', T0 + 10, { doneAt: T0 + 10 }), relativePath: 'n.csv', path: '/n.csv', folder: '/' }, T0 + 10);
    h.append({ ...rec('new2', 'failed', T0 + 20), relativePath: 'm.csv', path: '/m.csv', folder: '/', gone: T0 + 20 }, T0 + 20);
    h.append({ ...rec('new3', 'done', T0 + DAY, { doneAt: T0 + DAY }), relativePath: 'o.csv', path: '/o.csv', folder: '/' }, T0 + DAY);
    assert.deepEqual(await countFiles(sources), { waiting: 0, 'in-progress': 0, retrying: 0, done: 29, failed: 4 });
    const page = await listFiles(sources, parseFileQuery({ limit: '2' }));
    assert.deepEqual(page.files.map((f) => f.id), ['new3', 'new2']);
    assert.equal(page.files[1].state, 'failed');
    assert.ok(page.files[1].goneAt);
    h.prune(T0 + 9 * DAY); // the oldest day goes
    const c = await countFiles(sources);
    assert.equal(c.done + c.failed, 10 + 12 + 1);
    h.close();
  });

  test('the tail reader: lines across chunk boundaries, a torn line skipped, a line being written not read', () => {
    const dir = tmp();
    const file = path.join(dir, 'f.jsonl');
    const lines = Array.from({ length: 400 }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(i * 7 % 900) }));
    fs.writeFileSync(file, lines.join('\n') + '\n' + '{"i":"partial');
    const size = fs.statSync(file).size;
    const got = [...linesBackward(file, '2026-12-01', size)];
    assert.equal(got.length, 400);
    assert.deepEqual(got.map((l) => JSON.parse(l.raw).i), [...Array(400).keys()].reverse());
    const buf = fs.readFileSync(file);
    for (const l of got.slice(0, 50)) assert.equal(buf.toString('utf8', l.start, l.end - 1), l.raw);
    // From the middle: a position is where a line ends.
    const mid = got[200];
    const rest = [...linesBackward(file, '2026-12-01', mid.end)];
    assert.equal(JSON.parse(rest[0].raw).i, 199);
    assert.equal(rest.length, 200);
  });

  test('a day file is counted as its lines read one by one would be: markers and lines across chunk boundaries, long lines, a line being written', () => {
    const dir = tmp();
    const file = path.join(dir, 'day.jsonl');
    const CHUNK = 64 * 1024;
    const done = (pad: number) => JSON.stringify({ pad: 'x'.repeat(pad), state: 'done' });
    const failed = (pad: number) => JSON.stringify({ pad: 'y'.repeat(pad), state: 'failed', note: '"state":"don' });
    const lines: string[] = [];
    let size = 0;
    const add = (l: string) => {
      lines.push(l);
      size += Buffer.byteLength(l) + 1;
    };
    // A marker split by the first chunk boundary: the line's "done" starts 5 bytes before it.
    add(done(CHUNK + 10 - done(0).length));
    assert.equal(lines[0].indexOf('"state":"done"'), CHUNK - 5);
    // Ordinary lines of every length, some with multi-byte characters, some done, some not.
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let i = 0; i < 3000; i++) add(rnd(3) === 0 ? done(rnd(400)) : rnd(5) === 0 ? failed(rnd(300)) + 'é' : failed(rnd(300)));
    add('');
    // Lines longer than the buffer, one done and one not, and one done exactly at a boundary's end.
    add(done(3 * CHUNK));
    add(failed(2 * CHUNK + 17));
    const fill = (CHUNK - ((size + 1 + done(0).length) % CHUNK)) % CHUNK;
    add(failed(fill + (fill < failed(0).length ? CHUNK : 0) - failed(0).length));
    add(done(0));
    assert.equal(size % CHUNK, 1, 'the last done line ends where a chunk ends');
    fs.writeFileSync(file, lines.join('\n') + '\n' + '{"state":"done"'); // the last line is still being written
    const expected = { done: 0, failed: 0 };
    for (const l of lines) if (l) lineIsDone(l) ? expected.done++ : expected.failed++;
    assert.ok(expected.done > 900 && expected.failed > 1900, JSON.stringify(expected));
    assert.deepEqual(countDayFile(file), expected);
    // The same whatever the first bytes' alignment.
    for (const shift of [1, 2, 13]) {
      fs.writeFileSync(file, 'z'.repeat(shift) + '\n' + lines.join('\n') + '\n');
      assert.deepEqual(countDayFile(file), { done: expected.done, failed: expected.failed + 1 });
    }
    assert.throws(() => countDayFile(path.join(dir, 'gone.jsonl')), /ENOENT/);
  });

  test('unusable queries are refused with a clear message', () => {
    const bad = (q: Record<string, unknown>, re: RegExp): void => {
      assert.throws(
        () => parseFileQuery(q),
        (e: unknown) => e instanceof LabError && e.code === 'BAD_INPUT' && re.test(e.message),
      );
    };
    bad({ limit: '0' }, /limit must be a whole number from 1 to 500, got "0"/);
    bad({ limit: '501' }, /limit/);
    bad({ limit: '1e2' }, /limit/);
    bad({ limit: ['1', '2'] }, /more than once/);
    bad({ state: 'gone' }, /state must be one of waiting, in-progress, retrying, done, failed/);
    bad({ cursor: 'not!base64' }, /cursor/);
    bad({ cursor: Buffer.from('{"v":1,"h":{"../x":[ "2026-01-01", 1]}}').toString('base64url') }, /cursor/);
    bad({ cursor: Buffer.from('{"v":1,"h":{"w":["../../etc", 1]}}').toString('base64url') }, /cursor/);
    bad({ cursor: Buffer.from('{"v":1,"h":{"w":["2026-01-01", -1]}}').toString('base64url') }, /cursor/);
    bad({ q: 'x'.repeat(201) }, /at most 200/);
    assert.equal(parseFileQuery({}).limit, 50);
  });
});
