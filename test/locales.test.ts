/**
 * Every node's message catalogue and help exist in en-US, de and ja, with the same keys, and every
 * node registered in package.json has them.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';

const root = path.resolve(__dirname, '..', '..');
const LANGS = ['en-US', 'de', 'ja'];

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
    });
  }
});
