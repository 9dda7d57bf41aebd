/**
 * The message mechanism itself: English from the en-US catalogue, a message with nested
 * messages (notes, per-field problems) told wholly in one language, and the retelling of an
 * error by a node in the runtime's language. The runtime's `RED._` is stood in for by a lookup in
 * the shipped catalogue files (real Node-RED is exercised in i18n-runtime.test.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type { NodeAPI } from 'node-red';
import { LabError } from '../nodes/lib/http/errors';
import { errorText, messageRef } from '../nodes/lib/messages';
import { translator } from '../nodes/lib/node-red';

const root = path.resolve(__dirname, '..', '..');
const read = (lang: string, file: string) => JSON.parse(fs.readFileSync(path.join(root, 'locales', lang, `${file}.json`), 'utf8'));

/** `RED._` as Node-RED answers it for one language: `namespace:key` or the node's own namespace. */
function runtimeIn(lang: string, nodeFile: string): NodeAPI {
  const fill = (s: string, vars: Record<string, unknown>) => s.replace(/__(\w+)__/g, (m, v: string) => (v in vars ? String(vars[v]) : m));
  return {
    _: (key: string, vars: Record<string, unknown> = {}) => {
      const [ns, k] = key.includes(':') ? [key.slice(0, key.lastIndexOf(':')), key.slice(key.lastIndexOf(':') + 1)] : [nodeFile, key];
      const file = ns.split('/').pop()!;
      const text = k.split('.').reduce<any>((o, p) => o?.[p], read(lang, file));
      return typeof text === 'string' ? fill(text, vars) : k;
    },
  } as unknown as NodeAPI;
}

describe('messages', () => {
  const en = read('en-US', 'lab-messages')['lab-messages'].errors;
  const de = read('de', 'lab-messages')['lab-messages'].errors;

  test('a LabError speaks English from the en-US catalogue, nested notes included', () => {
    const err = new LabError('HTTP', 'http.statusWithNotes', {
      what: 'Benchling GET /blobs/b1',
      status: 401,
      detail: 'Unauthorized',
      notes: [messageRef('benchling.apiErrorId', { id: 'E-7' }), messageRef('benchling.checkCredentials')],
    });
    const notes = `${en.benchling.apiErrorId.replace('__id__', 'E-7')}; ${en.benchling.checkCredentials}`;
    assert.equal(err.message, `Benchling GET /blobs/b1 failed: HTTP 401: Unauthorized — ${notes}`);
    assert.equal(errorText('http.timeout', { what: 'X', seconds: 3 }), 'X: no answer within 3 s');
  });

  test('a node retells the error wholly in the runtime language, code and status kept', () => {
    const t = translator(runtimeIn('de', 'benchling-upload-blob'), 'benchling-upload-blob');
    const err = new LabError('HTTP', 'http.statusWithNotes', { what: 'Benchling GET /x', status: 401, detail: 'Unauthorized', notes: [messageRef('benchling.checkCredentials')] }, { status: 401 });
    const told = t.error(err) as LabError;
    assert.equal(told.message, de.http.statusWithNotes.replace('__what__', 'Benchling GET /x').replace('__status__', '401').replace('__detail__', 'Unauthorized').replace('__notes__', de.benchling.checkCredentials));
    assert.notEqual(told.message, err.message);
    assert.equal(told.code, 'HTTP');
    assert.equal(told.status, 401);
    assert.equal(told.key, 'http.statusWithNotes');
    assert.equal(t('status.uploaded', { name: 'a.csv' }), read('de', 'benchling-upload-blob')['benchling-upload-blob'].status.uploaded.replace('__name__', 'a.csv'));
    assert.equal(t.shared('status.waitRateLimit'), read('de', 'lab-messages')['lab-messages'].status.waitRateLimit);
  });

  test('an error wrapped in another is told in the same language; a plain error keeps its text', () => {
    const t = translator(runtimeIn('de', 'ot2-run'), 'ot2-run');
    const inner = new LabError('TIMEOUT', 'http.timeout', { what: 'OT-2 GET /runs/r1', seconds: 5 });
    const outer = new LabError('TASK_FAILED', 'common.cancelled', { reason: inner });
    assert.equal(outer.message, `cancelled: ${inner.message}`);
    const told = t.error(outer).message;
    assert.equal(told, de.common.cancelled.replace('__reason__', de.http.timeout.replace('__what__', 'OT-2 GET /runs/r1').replace('__seconds__', '5')));
    assert.equal(t.error(new LabError('CANCELLED', 'common.cancelled', { reason: new Error('EACCES: permission denied') })).message, de.common.cancelled.replace('__reason__', 'EACCES: permission denied'));
  });

  test('without any catalogue loaded (RED._ answers the key), the texts are the English ones', () => {
    const t = translator({ _: (k: string) => k } as unknown as NodeAPI, 'benchling-upload-blob');
    assert.equal(t('status.uploaded', { name: 'a.csv' }), read('en-US', 'benchling-upload-blob')['benchling-upload-blob'].status.uploaded.replace('__name__', 'a.csv'));
    const err = new LabError('TIMEOUT', 'http.timeout', { what: 'X', seconds: 3 });
    assert.equal(t.error(err).message, 'X: no answer within 3 s');
  });

  test('secrets in values never reach the text, in any language', () => {
    const t = translator(runtimeIn('ja', 'benchling-upload-blob'), 'benchling-upload-blob');
    const err = new LabError('NETWORK', 'http.network', { what: 'GET /x', reason: 'Authorization: Bearer abcdefghijklmnop1234' });
    assert.doesNotMatch(err.message, /abcdefghijklmnop1234/);
    assert.doesNotMatch(t.error(err).message, /abcdefghijklmnop1234/);
    const plain = Object.assign(new Error('GET failed with Authorization: Bearer abcdefghijklmnop1234'), { code: 'EX' });
    const safe = t.error(plain) as Error & { code?: string };
    assert.doesNotMatch(safe.message, /abcdefghijklmnop1234/);
    assert.equal(safe.code, 'EX');
  });
});
