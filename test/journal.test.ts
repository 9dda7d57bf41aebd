/** Durable state: survives reopen, a torn last line, compaction, and a SIGKILL of the writer. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { randomUUID } from 'crypto';
import { Journal, stateFilePath, timeOfValue } from '../nodes/lib/journal';
import { tempDir } from './support/nodered';

const DAY = 24 * 60 * 60 * 1000;

describe('Journal', () => {
  test('set / delete survive a reopen', () => {
    const file = path.join(tempDir('journal'), 'a.jsonl');
    const j = Journal.open<{ n: number }>(file);
    j.set('a', { n: 1 });
    j.set('b', { n: 2 });
    j.set('a', { n: 3 });
    j.delete('b');
    j.close();
    const k = Journal.open<{ n: number }>(file);
    assert.deepEqual([...k.entries()], [['a', { n: 3 }]]);
    k.close();
  });

  test('a line torn by a crash is skipped, the rest is kept', () => {
    const file = path.join(tempDir('journal'), 'torn.jsonl');
    fs.writeFileSync(file, '{"k":"x","v":1}\n{"k":"y","v":2}\n{"k":"z","v"');
    const j = Journal.open<number>(file);
    assert.equal(j.get('x'), 1);
    assert.equal(j.get('y'), 2);
    assert.equal(j.has('z'), false);
    j.close();
  });

  test('compaction keeps only live records', () => {
    const file = path.join(tempDir('journal'), 'c.jsonl');
    const j = Journal.open<number>(file, { compactSlack: 10 });
    for (let i = 0; i < 200; i++) j.set('same', i);
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n').length;
    assert.ok(lines <= 13, `file has ${lines} lines`);
    j.close();
    assert.equal(Journal.open<number>(file).get('same'), 199);
  });

  test('what was written before a SIGKILL is there after it', async () => {
    const file = path.join(tempDir('journal'), 'kill.jsonl');
    const script = `
      const { Journal } = require(${JSON.stringify(path.resolve(__dirname, '../nodes/lib/journal.js'))});
      const j = Journal.open(${JSON.stringify(file)}, { fsyncIntervalMs: 60000 });
      for (let i = 0; i < 500; i++) j.set('k' + i, { i });
      process.stdout.write('written\\n');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout!.on('data', (d) => String(d).includes('written') && resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const j = Journal.open<{ i: number }>(file);
    assert.equal(j.size, 500);
    assert.deepEqual(j.get('k499'), { i: 499 });
    j.close();
  });

  test('pruneOlderThan drops old records, keeps recent ones and those without a time; survives a reopen', () => {
    const file = path.join(tempDir('journal'), 'prune.jsonl');
    const j = Journal.open<{ at?: number }>(file);
    const now = Date.parse('2026-12-07T00:00:00Z');
    j.set('old', { at: now - 31 * DAY });
    j.set('recent', { at: now - 29 * DAY });
    j.set('timeless', {});
    assert.equal(j.pruneOlderThan(30 * DAY, (v) => v.at, now), 1);
    assert.deepEqual([...j.entries()].map(([k]) => k).sort(), ['recent', 'timeless']);
    j.close();
    const k = Journal.open<{ at?: number }>(file);
    assert.deepEqual([...k.entries()].map(([key]) => key).sort(), ['recent', 'timeless']);
    k.close();
  });

  test('retention: records past it are dropped when the journal is opened (ISO or ms times)', () => {
    const file = path.join(tempDir('journal'), 'retention.jsonl');
    const j = Journal.open<{ at: number | string }>(file);
    j.set('a', { at: new Date(Date.now() - 40 * DAY).toISOString() });
    j.set('b', { at: Date.now() - 40 * DAY });
    j.set('c', { at: Date.now() });
    j.close();
    const k = Journal.open<{ at: number | string }>(file, { retention: { maxAgeMs: 30 * DAY, timeOf: (v) => timeOfValue(v.at) } });
    assert.deepEqual([...k.entries()].map(([key]) => key), ['c']);
    k.close();
    assert.equal(fs.readFileSync(file, 'utf8').trim().split('\n').length, 1, 'compacted');
  });

  test('100,000 upload records (a long history) take well under 30 MB of heap', async () => {
    const file = path.join(tempDir('journal'), 'big.jsonl');
    let text = '';
    for (let i = 0; i < 100_000; i++) {
      const k = `/data/instrument/plates/2026-12/plate-${String(i).padStart(6, '0')}.csv|${1000 + i}|${1765000000000 + i * 1000}.123`;
      text += JSON.stringify({ k, v: { state: 'complete', blobId: randomUUID(), size: 1000 + i, at: 1765000000000 + i } }) + '\n';
    }
    fs.writeFileSync(file, text);
    const script = `
      const { Journal } = require(${JSON.stringify(path.resolve(__dirname, '../nodes/lib/journal.js'))});
      global.gc();
      const before = process.memoryUsage().heapUsed;
      const j = Journal.open(${JSON.stringify(file)});
      global.gc();
      process.stdout.write(JSON.stringify({ size: j.size, bytes: process.memoryUsage().heapUsed - before }));`;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--expose-gc', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let buf = '';
      child.stdout!.on('data', (d) => (buf += d));
      child.on('exit', (code) => (code === 0 ? resolve(buf) : reject(new Error(`exit ${code}`))));
    });
    const { size, bytes } = JSON.parse(out);
    assert.equal(size, 100_000);
    assert.ok(bytes < 30 * 1024 * 1024, `${(bytes / 1048576).toFixed(1)} MB`);
  });

  test('state files live under the user directory, one per node', () => {
    assert.equal(stateFilePath('/u', 'benchling-upload-blob', 'a1/b2'), path.join('/u', 'labwire-state', 'benchling-upload-blob-a1_b2.jsonl'));
  });
});
