/**
 * Every node's message catalogue and help exist in en-US, de and ja, with the same keys, and every
 * node registered in package.json has them; the shared catalogue (`lab-messages`) too; every
 * translation keeps its text's placeholders; and every key the code and the editor ask for exists.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';

const root = path.resolve(__dirname, '..', '..');
const LANGS = ['en-US', 'de', 'ja'];

function readCatalogue(lang: string, file: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(root, 'locales', lang, `${file}.json`), 'utf8'));
}

function leaves(obj: unknown, prefix = ''): Array<[string, string]> {
  if (typeof obj === 'string') return [[prefix, obj]];
  return Object.entries(obj as Record<string, unknown>).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
}

const placeholders = (text: string) => [...new Set(text.match(/__\w+__/g) ?? [])].sort();

/** Same keys as en-US, and each text names the same placeholders as its English original. */
function assertTranslated(file: string): void {
  const en = new Map(leaves(readCatalogue('en-US', file)));
  for (const lang of LANGS.filter((l) => l !== 'en-US')) {
    const cat = new Map(leaves(readCatalogue(lang, file)));
    assert.deepEqual([...cat.keys()].sort(), [...en.keys()].sort(), `${lang}/${file}.json has the same keys as en-US`);
    for (const [key, text] of en) {
      assert.deepEqual(placeholders(cat.get(key)!), placeholders(text), `${lang}/${file}.json ${key} keeps the placeholders of "${text}"`);
      assert.ok(cat.get(key)!.trim() !== '', `${lang}/${file}.json ${key} is not empty`);
    }
  }
}

function keyPaths(obj: unknown, prefix = ''): string[] {
  if (!obj || typeof obj !== 'object') return [prefix];
  return Object.entries(obj as Record<string, unknown>).flatMap(([k, v]) => keyPaths(v, prefix ? `${prefix}.${k}` : k));
}

/** Node types per node file, read from the editor definitions the build ships. */
function nodeTypes(): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  return Object.keys(pkg['node-red'].nodes as Record<string, string>).flatMap((name) => {
    const html = fs.readFileSync(path.join(root, 'nodes', `${name}.html`), 'utf8');
    return [...html.matchAll(/RED\.nodes\.registerType\(\s*'([^']+)'/g)].map((m) => m[1]);
  });
}

describe('catalogues and help', () => {
  for (const type of nodeTypes()) {
    test(type, () => {
      const en = JSON.parse(fs.readFileSync(path.join(root, 'locales', 'en-US', `${type}.json`), 'utf8'));
      const enKeys = keyPaths(en).sort();
      assert.ok(enKeys.every((k) => k.startsWith(`${type}.`)), 'keys live under the node type');
      for (const lang of LANGS) {
        const cat = JSON.parse(fs.readFileSync(path.join(root, 'locales', lang, `${type}.json`), 'utf8'));
        assert.deepEqual(keyPaths(cat).sort(), enKeys, `${lang}/${type}.json has the same keys as en-US`);
        const help = fs.readFileSync(path.join(root, 'locales', lang, `${type}.html`), 'utf8');
        assert.match(help, new RegExp(`data-help-name="${type}"`), `${lang}/${type}.html is its help`);
      }
      assertTranslated(type);
      for (const lang of LANGS) {
        // The palette splits a label at "-" and puts spaces around it ("OT - 2 run"): labels use
        // the non-breaking hyphen U+2011 within a short name (OT‑2), a space between longer words
        // (so the palette can wrap there).
        const label = (readCatalogue(lang, type)[type] as { paletteLabel?: string }).paletteLabel;
        assert.equal(typeof label, 'string', `${lang}/${type}.json has a paletteLabel`);
        assert.doesNotMatch(label!, /-/, `${lang}/${type}.json paletteLabel "${label}" uses U+2011, not "-"`);
      }
    });
  }

  test('the shared catalogue (errors and shared status texts) is complete in every language', () => {
    assertTranslated('lab-messages');
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    assert.equal(pkg['node-red'].plugins['lab-messages'], 'dist/nodes/lab-messages.js', 'the plugin that gives it a namespace is registered');
  });

  test('the Lab files sidebar\'s catalogue is complete in every language, and every key its editor file asks for exists', () => {
    assertTranslated('lab-files');
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    assert.equal(pkg['node-red'].plugins['lab-files'], 'dist/nodes/lab-files.js');
    const keys = new Set(leaves(readCatalogue('en-US', 'lab-files')).map(([k]) => k));
    const html = fs.readFileSync(path.join(root, 'nodes', 'lab-files.html'), 'utf8');
    const asked = [...html.matchAll(/\b_\(\s*['"]([\w.-]+)['"]/g)].map((m) => m[1]).filter((k) => !k.endsWith('.')).map((k) => `lab-files.${k}`); // (a key ending in "." is a prefix: built below)
    // Keys built from the states, stages and id fields.
    for (const s of ['waiting', 'in-progress', 'retrying', 'done', 'failed']) asked.push(`lab-files.state.${s}`);
    for (const s of ['seen', 'stable', 'uploaded', 'processorCreated', 'taskFinished', 'done']) asked.push(`lab-files.stage.${s}`);
    for (const s of ['blobId', 'processorId', 'taskId', 'assayRunId', 'entryId']) asked.push(`lab-files.field.${s}`);
    assert.ok(asked.length > 20);
    assert.deepEqual(asked.filter((k) => !keys.has(k)), []);
  });

  test('every catalogue key the nodes and their editors ask for exists in en-US', () => {
    const missing: string[] = [];
    const has = (file: string, key: string) => new Map(leaves(readCatalogue('en-US', file))).has(key);
    for (const type of nodeTypes()) {
      const ts = path.join(root, 'nodes', `${type}.ts`);
      const code = fs.existsSync(ts) ? fs.readFileSync(ts, 'utf8') : '';
      for (const m of code.matchAll(/\bt\(\s*'([\w.]+)'/g)) if (!has(type, `${type}.${m[1]}`)) missing.push(`${type}.ts: ${m[1]}`);
      for (const m of code.matchAll(/\bt\.shared\(\s*'([\w.]+)'/g)) if (!has('lab-messages', `lab-messages.${m[1]}`)) missing.push(`${type}.ts: shared ${m[1]}`);
      const html = fs.readFileSync(path.join(root, 'nodes', `${type}.html`), 'utf8');
      for (const m of html.matchAll(/(?:this\._|RED\._|data-i18n=")\(?\s*'?((?:\[\w+\])?[\w-]+\.[\w.]+)/g)) {
        const key = m[1].replace(/^\[\w+\]/, '');
        // A key ending in "." is completed at run time ('x.nodeLabel.' + op): some key must start so.
        const found = key.endsWith('.') ? [...new Map(leaves(readCatalogue('en-US', type))).keys()].some((k) => k.startsWith(key)) : has(type, key);
        if (key.startsWith(`${type}.`) && !found) missing.push(`${type}.html: ${key}`);
      }
    }
    assert.deepEqual(missing, []);
  });
});
