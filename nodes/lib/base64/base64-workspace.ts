/**
 * Base64 of large data in memory allocated once: bytes are put into `input`, `encode` turns them
 * into characters in one of two output buffers (one can be on its way to a socket while the other
 * is filled). Used for blob parts, where a 1 GiB file is 1.4 GB of base64.
 *
 * Why not `buffer.toString('base64')`: every call makes a JavaScript string on V8's heap, which
 * then has to be copied out again and collected. For a large file that is most of what the
 * garbage collector does, and the young generation grows (and old garbage piles up) the longer an
 * upload runs, so peak memory depended on the file's size. The WebAssembly SIMD encoder
 * (encoder.wat) writes the characters straight into the output buffer: no string, no copy, flat
 * memory, and ~30 % less CPU than the string path on its own. Where WebAssembly SIMD is not
 * available (a Node.js started with `--jitless`, say), the same interface falls back to strings
 * in chunks small enough to die young (see STRING_CHUNK).
 */
import { ENCODER_WASM } from './encoder-wasm';

const BLOCK_BYTES = 12;
const BLOCK_CHARS = 16;
/** The encoder reads 16 bytes per 12-byte block: the input is followed by this much slack. */
const SLACK = 16;
const WASM_PAGE = 65_536;
/**
 * Fallback only: bytes per `toString('base64')`. A multiple of 3 (so pieces join without
 * padding) whose base64 (131,040 chars) stays under V8's large-object size (128 KiB): such a
 * string is made in the young generation and dies there cheaply.
 */
export const STRING_CHUNK = 98_280;

export function base64Length(bytes: number): number {
  return 4 * Math.ceil(bytes / 3);
}

export interface Base64Workspace {
  /** Where the bytes to encode go (`size` bytes). */
  readonly input: Buffer;
  /** 'wasm' (SIMD, no strings) or 'string' (the fallback). */
  readonly kind: 'wasm' | 'string';
  /**
   * Encodes `input[0, length)` into output buffer `slot` (0 or 1) and returns the characters (as
   * latin1 bytes). The result is a view: valid until the same slot is encoded again. `length`
   * must be a multiple of 3 unless it ends the data (only then is there padding).
   */
  encode(length: number, slot: 0 | 1): Buffer;
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled encoder, or null where this Node.js cannot run WebAssembly SIMD. */
function encoderModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(Buffer.from(ENCODER_WASM, 'base64'));
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

export function wasmBase64Available(): boolean {
  return encoderModule() !== null;
}

/** A workspace for up to `size` bytes at a time; `prefer: 'string'` forces the fallback (tests). */
export function createBase64Workspace(size: number, prefer: 'wasm' | 'string' = 'wasm'): Base64Workspace {
  const mod = prefer === 'wasm' ? encoderModule() : null;
  return mod ? wasmWorkspace(mod, size) : stringWorkspace(size);
}

function wasmWorkspace(mod: WebAssembly.Module, size: number): Base64Workspace {
  const outSize = align16(base64Length(size));
  const outAt = [align16(size + SLACK), 0];
  outAt[1] = outAt[0] + outSize;
  // The memory never grows: growing would detach the views below (and any still being written).
  const memory = new WebAssembly.Memory({ initial: Math.ceil((outAt[1] + outSize) / WASM_PAGE) });
  const { encode } = new WebAssembly.Instance(mod, { env: { memory } }).exports as { encode: (src: number, dst: number, blocks: number) => void };
  const heap = Buffer.from(memory.buffer);
  const input = heap.subarray(0, size);
  const outputs = [heap.subarray(outAt[0], outAt[0] + outSize), heap.subarray(outAt[1], outAt[1] + outSize)];
  return {
    input,
    kind: 'wasm',
    encode(length, slot) {
      checkLength(length, size);
      const blocks = Math.floor(length / BLOCK_BYTES);
      encode(0, outAt[slot], blocks);
      const out = outputs[slot];
      let n = blocks * BLOCK_CHARS;
      // The last 0–11 bytes (with the padding, if any): a string of at most 16 characters.
      if (blocks * BLOCK_BYTES < length) n += out.write(input.toString('base64', blocks * BLOCK_BYTES, length), n, 'latin1');
      return out.subarray(0, n);
    },
  };
}

function stringWorkspace(size: number): Base64Workspace {
  const input = Buffer.allocUnsafe(size);
  const outputs = [Buffer.allocUnsafe(base64Length(size)), Buffer.allocUnsafe(base64Length(size))];
  return {
    input,
    kind: 'string',
    encode(length, slot) {
      checkLength(length, size);
      const out = outputs[slot];
      let n = 0;
      for (let at = 0; at < length; at += STRING_CHUNK) n += out.write(input.toString('base64', at, Math.min(length, at + STRING_CHUNK)), n, 'latin1');
      return out.subarray(0, n);
    },
  };
}

function checkLength(length: number, size: number): void {
  if (!Number.isInteger(length) || length < 0 || length > size) throw new RangeError(`base64 workspace: ${length} bytes do not fit in ${size}`);
}

function align16(n: number): number {
  return Math.ceil(n / 16) * 16;
}
