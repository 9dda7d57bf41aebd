/**
 * The OT-2 texts in the catalogues: the `errors.ot2` section of the shared catalogue has the same
 * ids and placeholders in every language, the client's errors carry ids (English from en-US), and a
 * node retells them — and shows its status texts — in the runtime's language.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type { NodeAPI } from 'node-red';
import { robotBaseUrl } from '../nodes/clients/opentrons/client';
import { busyError, doorError, flagOffError } from '../nodes/clients/opentrons/runner';
import { LabError } from '../nodes/lib/http/errors';
import { translator } from '../nodes/lib/node-red';

const root = path.resolve(__dirname, '..', '..');
const LANGS = ['en-US', 'de', 'ja'];

function catalogue(lang: string, file: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(root, 'locales', lang, `${file}.json`), 'utf8'));
}

function leaves(obj: unknown, prefix = ''): Record<string, string> {
  if (typeof obj === 'string') return { [prefix]: obj };
  return Object.entries(obj as Record<string, unknown>).reduce(
    (acc, [k, v]) => ({ ...acc, ...leaves(v, prefix ? `${prefix}.${k}` : k) }),
    {} as Record<string, string>,
  );
}

const placeholders = (s: string) => [...s.matchAll(/__(\w+)__/g)].map((m) => m[1]).sort();

/** A runtime whose `RED._` reads the pack's catalogues of one language, as Node-RED's i18n does. */
function runtimeIn(lang: string): NodeAPI {
  const _ = (full: string, vars: Record<string, unknown> = {}) => {
    const [ns, key] = full.includes(':') ? full.split(':') : [undefined, full];
    const file = ns ? ns.split('/').pop()! : key.split('.')[0];
    const text = leaves(catalogue(lang, file))[key];
    return text === undefined ? full : text.replace(/__(\w+)__/g, (m, v: string) => (v in vars ? String(vars[v]) : m));
  };
  return { _ } as unknown as NodeAPI;
}

describe('OT-2 messages', () => {
  test('errors.ot2 has the same ids and placeholders in en-US, de and ja', () => {
    const [en, ...others] = LANGS.map((l) => leaves((catalogue(l, 'lab-messages')['lab-messages'] as { errors: { ot2: unknown } }).errors.ot2));
    assert.ok(Object.keys(en).length > 40);
    for (const [i, cat] of others.entries()) {
      assert.deepEqual(Object.keys(cat).sort(), Object.keys(en).sort(), `${LANGS[i + 1]} ids`);
      for (const k of Object.keys(en)) assert.deepEqual(placeholders(cat[k]), placeholders(en[k]), `${LANGS[i + 1]} ot2.${k}`);
    }
  });

  test('client errors carry an id and values; the English text comes from en-US', () => {
    assert.throws(() => robotBaseUrl('a b'), (err: LabError) => err.key === 'ot2.hostInvalid' && err.vars.host === 'a b' && err.message === 'robot host "a b" is not a host name or IP address');
    const flag = flagOffError();
    assert.equal(flag.status, 403);
    assert.match(flag.message, /POST \/settings \{"id":"enableHttpProtocolSessions","value":true\}/);
    assert.equal(busyError('').key, 'ot2.busy');
    assert.equal(busyError('run 7 is running').message, 'the robot is busy with another run (run 7 is running); wait for it to finish or stop it on the robot, then send the message again');
    assert.equal(doorError('').status, 409);
  });

  test('a node tells them in the runtime language (de, ja), and falls back to English', () => {
    const de = translator(runtimeIn('de'), 'ot2-run');
    assert.equal(de.error(doorError('')).message, 'die Tür des Roboters ist offen; schließen Sie die Tür (und das obere Fenster) und senden Sie die Nachricht erneut');
    assert.equal(de('status.offline'), 'Roboter nicht erreichbar, neuer Versuch');
    assert.equal(de('status.withStepNumber', { status: de('status.running'), number: 2, count: 4, step: 'comment: Step 2 of 4' }), 'läuft: Schritt 2 von 4 (comment: Step 2 of 4)');
    const ja = translator(runtimeIn('ja'), 'ot2-run');
    assert.equal((ja.error(busyError('')) as LabError).code, 'TASK_FAILED');
    assert.match(ja.error(busyError('')).message, /^ロボットは別のランを実行中です/);
    assert.equal(ja('paletteLabel'), 'OT\u20112 ラン'); // a non-breaking hyphen: the palette spaces out '-'
    const en = translator({ _: (k: string) => k } as unknown as NodeAPI, 'ot2-run');
    assert.equal(en('status.queued'), 'queued (a run is in progress)');
    assert.equal(en.error(busyError('')).message, busyError('').message);
  });
});
