/** Durable state: survives reopen, a torn last line, compaction, and a SIGKILL of the writer. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { Journal, stateFilePath } from '../nodes/lib/journal';
import { tempDir } from './support/nodered';

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

  test('state files live under the user directory, one per node', () => {
    assert.equal(stateFilePath('/u', 'benchling-upload-blob', 'a1/b2'), path.join('/u', 'labwire-state', 'benchling-upload-blob-a1_b2.jsonl'));
  });
});
