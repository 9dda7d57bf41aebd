/**
 * Runs nodes inside a real Node-RED runtime (node-red-node-test-helper) with a fresh user
 * directory, so durable state starts empty unless a test reuses the directory on purpose.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper');

helper.init(require.resolve('node-red'));

export { helper };

/** Node-RED's own core nodes that tests wire next to ours. */
const CORE_NODES: Record<string, string> = {
  catch: '@node-red/nodes/core/common/25-catch.js',
  status: '@node-red/nodes/core/common/25-status.js',
  complete: '@node-red/nodes/core/common/24-complete.js',
  function: '@node-red/nodes/core/function/10-function.js',
  // One file registers both; load it once per flow (list only one of the two types).
  'http in': '@node-red/nodes/core/network/21-httpin.js',
  'http response': '@node-red/nodes/core/network/21-httpin.js',
};

/** A node module by type: a core node, or one of the pack's compiled nodes. */
export function nodeModule(type: string): unknown {
  if (CORE_NODES[type]) return require(CORE_NODES[type]);
  return require(path.resolve(__dirname, '..', '..', 'nodes', `${type}.js`));
}

const madeDirs: string[] = [];
// Temp folders go when the test process ends, so repeated runs do not fill the disk.
process.on('exit', () => {
  for (const d of madeDirs) fs.rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `labwire-${prefix}-`));
  madeDirs.push(dir);
  return dir;
}

export interface Loaded {
  getNode(id: string): any;
}

/** Loads a flow with a given user directory (credentials by node id). */
export function loadFlow(types: string[], flow: unknown[], credentials: Record<string, unknown> = {}, userDir?: string): Promise<Loaded> {
  helper.settings({ userDir: userDir ?? tempDir('userdir') });
  return new Promise((resolve, reject) => {
    try {
      helper.load(types.map(nodeModule), flow, credentials, () => resolve(helper));
    } catch (err) {
      reject(err);
    }
  });
}

export async function unload(): Promise<void> {
  await helper.unload();
}

/** Resolves with the next message a helper node receives (rejects after `ms`). */
export function nextMessage(node: any, ms = 10_000): Promise<any> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message at ${node.id} within ${ms} ms`)), ms);
    node.once('input', (msg: unknown) => {
      clearTimeout(timer);
      resolve(msg);
    });
  });
}

/** Resolves with the `n` next messages a helper node receives. */
export function messages(node: any, n: number, ms = 10_000): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const got: any[] = [];
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${n} messages at ${node.id} within ${ms} ms`)), ms);
    const on = (msg: unknown) => {
      got.push(msg);
      if (got.length === n) {
        clearTimeout(timer);
        node.removeListener('input', on);
        resolve(got);
      }
    };
    node.on('input', on);
  });
}

export const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
