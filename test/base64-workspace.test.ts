/**
 * The base64 workspace behind blob parts: the WebAssembly SIMD encoder and the string fallback
 * give exactly Buffer's base64 for every length and byte, the two output slots do not disturb
 * each other, the fallback is taken where WebAssembly is unavailable (`--jitless`), a part body
 * is the same JSON either way, and the committed encoder bytes are the assembly of encoder.wat.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { base64Length, createBase64Workspace, wasmBase64Available } from '../nodes/lib/base64/base64-workspace';
import { partBody, PartBuffers, READ_SIZE } from '../nodes/clients/benchling/blob-upload';
import { tempDir } from './support/nodered';

const root = path.resolve(__dirname, '..', '..');

async function text(stream: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer | string>) parts.push(Buffer.from(c));
  return Buffer.concat(parts).toString('latin1');
}

describe('base64 workspace', () => {
  test('WebAssembly SIMD is available on this Node.js (the fast path is the one measured)', () => {
    assert.equal(wasmBase64Available(), true);
    assert.equal(createBase64Workspace(1000).kind, 'wasm');
  });

  for (const kind of ['wasm', 'string'] as const) {
    test(`${kind}: every length 0–400 and whole reads give Buffer's base64, padding included`, () => {
      const ws = createBase64Workspace(READ_SIZE, kind);
      assert.equal(ws.kind, kind);
      const lengths = [...Array.from({ length: 401 }, (_, i) => i), 98_280, 393_117, READ_SIZE - 1, READ_SIZE - 2, READ_SIZE];
      for (const n of lengths) {
        const bytes = randomBytes(n);
        bytes.copy(ws.input);
        const out = ws.encode(n, (n % 2) as 0 | 1);
        assert.equal(out.length, base64Length(n), `length ${n}`);
        assert.equal(out.toString('latin1'), bytes.toString('base64'), `${kind}, ${n} bytes`);
      }
    });

    test(`${kind}: all 256 byte values in every position, and the two slots keep their own characters`, () => {
      const ws = createBase64Workspace(3 * 256 * 4, kind);
      const all = Buffer.alloc(3 * 256 * 4);
      for (let i = 0; i < all.length; i++) all[i] = (i * 7 + (i >> 8)) & 255;
      all.copy(ws.input);
      const first = ws.encode(all.length, 0);
      const firstText = first.toString('latin1');
      assert.equal(firstText, all.toString('base64'));
      ws.input.fill(0xff);
      const second = ws.encode(30, 1);
      assert.equal(second.toString('latin1'), Buffer.alloc(30, 0xff).toString('base64'));
      assert.equal(first.toString('latin1'), firstText, 'slot 0 untouched by slot 1');
    });

    test(`${kind}: lengths that do not fit are refused`, () => {
      const ws = createBase64Workspace(12, kind);
      assert.throws(() => ws.encode(13, 0), /13 bytes do not fit in 12/);
      assert.throws(() => ws.encode(-1, 0), RangeError);
    });
  }

  test('a Node.js without WebAssembly (--jitless) falls back to strings and still encodes right', () => {
    const mod = path.join(root, 'dist', 'nodes', 'lib', 'base64', 'base64-workspace.js');
    const script = `const b=require(${JSON.stringify(mod)});const w=b.createBase64Workspace(300);const d=require('crypto').randomBytes(300);d.copy(w.input);process.stdout.write(JSON.stringify({kind:w.kind,ok:w.encode(300,0).toString('latin1')===d.toString('base64')}))`;
    const r = spawnSync(process.execPath, ['--jitless', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { kind: 'string', ok: true });
  });

  test('a part body is the same JSON from the WebAssembly and the string workspace, with the part\'s MD5', async () => {
    const dir = tempDir('b64');
    const file = path.join(dir, 'data.bin');
    const data = randomBytes(2 * READ_SIZE + 1001);
    fs.writeFileSync(file, data);
    const start = 17;
    const length = data.length - start - 5;
    const expected = JSON.stringify({ partNumber: 3, data64: data.subarray(start, start + length).toString('base64'), md5: createHash('md5').update(data.subarray(start, start + length)).digest('hex') });
    for (const kind of ['wasm', 'string'] as const) {
      const body = partBody(file, 3, start, length, new PartBuffers(kind));
      const got = await text(body.stream);
      assert.equal(body.length, expected.length, kind);
      assert.equal(got, expected, kind);
    }
  });

  test('encoder-wasm.ts is the assembly of encoder.wat (node scripts/build-wasm.js --check)', () => {
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-wasm.js'), '--check'], { encoding: 'utf8', cwd: root });
    assert.equal(r.status, 0, r.stderr || r.stdout);
    assert.match(r.stdout, /matches/);
  });
});
