/**
 * The runtime's language reaches what users read: in a real `node-red` process started with
 * `lang: de` or `lang: ja`, a node's error arrives at the Catch node in that language (with its
 * stable `msg.error.code`), its red status says the same, and a node's status text comes from its
 * own catalogue. The texts are compared with the shipped catalogues, not hard-coded here.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, LabSimulator, DEFAULT_API_KEY } from '../simulator';
import { freePort, startNodeRed, NodeRedProcess, PROJECT_ROOT } from '../scripts/node-red-process';
import { tempDir, delay } from './support/nodered';

function catalogueText(lang: string, file: string, key: string, vars: Record<string, string> = {}): string {
  const cat = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'locales', lang, `${file}.json`), 'utf8'));
  const text = key.split('.').reduce((o, k) => o?.[k], cat) as unknown;
  assert.equal(typeof text, 'string', `${lang}/${file}.json has ${key}`);
  return (text as string).replace(/__(\w+)__/g, (_m, v: string) => vars[v] ?? `__${v}__`);
}

async function until<T>(what: string, get: () => T | undefined, ms = 30_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await delay(100);
  }
}

/** A flow: two uploads (one without a tenant, one to the simulator); Catch and Status nodes write JSON lines to `out`. */
function flow(out: string, file: string, benchlingUrl: string): unknown[] {
  const z = 'f100000000000001';
  const record = (id: string, what: string) => ({
    id,
    type: 'function',
    z,
    func: `msg.payload = JSON.stringify({ what: '${what}', error: msg.error, status: msg.status }); return msg;`,
    outputs: 1,
    wires: [['f1000000000000f1']],
  });
  return [
    { id: z, type: 'tab', label: 'i18n' },
    { id: 'f1000000000000c1', type: 'benchling-tenant', name: 'sim', url: benchlingUrl, authType: 'apiKey', rateLimit: 600, timeout: 10, credentials: { apiKey: DEFAULT_API_KEY } },
    { id: 'f100000000000011', type: 'inject', z, once: true, onceDelay: 0.3, repeat: '', payload: file, payloadType: 'str', topic: '', props: [{ p: 'payload' }], wires: [['f100000000000012', 'f100000000000013']] },
    { id: 'f100000000000012', type: 'benchling-upload-blob', z, name: 'no tenant', tenant: '', file: 'payload', fileType: 'msg', blobType: 'RAW_FILE', wires: [[]] },
    { id: 'f100000000000013', type: 'benchling-upload-blob', z, name: 'upload', tenant: 'f1000000000000c1', file: 'payload', fileType: 'msg', blobType: 'RAW_FILE', wires: [[]] },
    { id: 'f100000000000021', type: 'catch', z, scope: ['f100000000000012'], uncaught: false, wires: [['f100000000000022']] },
    record('f100000000000022', 'catch'),
    { id: 'f100000000000031', type: 'status', z, scope: ['f100000000000012', 'f100000000000013'], wires: [['f100000000000032']] },
    record('f100000000000032', 'status'),
    { id: 'f1000000000000f1', type: 'file', z, filename: out, filenameType: 'str', appendNewline: true, createDir: true, overwriteFile: 'false', encoding: 'utf8', wires: [] },
  ];
}

for (const lang of ['de', 'ja']) {
  describe(`Node-RED running in ${lang}`, () => {
    let sim: LabSimulator;
    let red: NodeRedProcess | undefined;
    const root = tempDir(`i18n-${lang}`);
    const out = path.join(root, 'out.jsonl');
    const file = path.join(root, 'plate.csv');
    const log: string[] = [];

    before(async () => {
      fs.writeFileSync(file, 'well,od\nA1,0.1\n');
      sim = await startLabSimulator({ benchling: { rateLimit: false } });
      red = await startNodeRed({
        userDir: path.join(root, 'node-red'),
        port: await freePort(),
        settings: { lang },
        env: { NO_PROXY: '127.0.0.1,localhost' },
        onLog: (l) => log.push(l),
      });
      await red.deploy(flow(out, file, sim.benchling.url));
    });
    after(async () => {
      await red?.stop();
      await sim?.close();
    });

    const lines = (): Array<{ what: string; error?: { message: string; code?: string; source: { name: string } }; status?: { text: string; fill: string; source: { name: string } } }> =>
      fs.existsSync(out) ? fs.readFileSync(out, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];

    test('an error reaches the Catch node and the status in the runtime language, with its code', async () => {
      const caught = await until('the caught error', () => lines().find((l) => l.what === 'catch'));
      const expected = catalogueText(lang, 'lab-messages', 'lab-messages.errors.common.noConfigNode', { type: 'benchling-tenant', node: 'no tenant' });
      assert.notEqual(expected, catalogueText('en-US', 'lab-messages', 'lab-messages.errors.common.noConfigNode'), 'the catalogue is translated');
      assert.match(caught.error!.message, new RegExp(`${expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`), log.join('\n'));
      assert.equal(caught.error!.code, 'BAD_INPUT');
      const red = await until('the red status', () => lines().find((l) => l.what === 'status' && l.status?.source.name === 'no tenant' && l.status.fill === 'red'));
      assert.equal(red.status!.text, expected.length > 40 ? expected.slice(0, 39) + '…' : expected);
    });

    test("a node's own status text comes from its catalogue", async () => {
      const expected = catalogueText(lang, 'benchling-upload-blob', 'benchling-upload-blob.status.uploaded', { name: 'plate.csv' });
      const done = await until('the upload status', () => lines().find((l) => l.what === 'status' && l.status?.source.name === 'upload' && l.status.fill === 'green'));
      assert.equal(done.status!.text, expected, log.join('\n'));
    });
  });
}
