/**
 * The bioAF nodes' edit dialogs in a real browser against a real Node-RED process with the pack:
 * they open without script errors, the labels come from the catalogue, the upsert dialog shows
 * the fields of the chosen mode, and the config node's secrets are credentials (never sent back).
 * Skipped on a developer machine without Chromium; in CI a missing Chromium fails (test/browser/support).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startNodeRed, NodeRedProcess } from '../scripts/node-red-process';
import { tempDir } from './support/nodered';
import { chromiumOrSkip, CHROMIUM_ARGS, freePort, requireChromium } from './browser/support';

const SECRET = 'whsec_editor-test-secret-not-real-00000000000000';

describe('bioAF editor dialogs', { skip: chromiumOrSkip() }, () => {
  let red: NodeRedProcess;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let browser: any;

  before(async () => {
    red = await startNodeRed({ userDir: tempDir('bioaf-editor'), port: await freePort() });
    await red.deploy([
      { id: 'tab1', type: 'tab', label: 'bioaf' },
      { id: 'bh1', type: 'bioaf-host', name: 'lab bioAF', url: 'https://bioaf.example.org', timeout: 30, caFile: '', credentials: { apiKey: 'biokey_EDITORtest01.fakefakefakefakefakefakefakefake', webhookSecrets: SECRET } },
      { id: 'bu1', type: 'bioaf-upsert', z: 'tab1', host: 'bh1', mode: 'upsert', resource: 'sample', externalId: 'externalId', externalIdType: 'msg', pageSize: 50, allPages: false, maxItems: 10000, x: 200, y: 100, wires: [[]] },
      { id: 'bv1', type: 'bioaf-webhook-verify', z: 'tab1', host: 'bh1', tolerance: 300, maxBytes: 1048576, retentionHours: 72, x: 200, y: 200, wires: [[], []] },
    ]);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { chromium } = require('playwright-core');
    browser = await chromium.launch({ executablePath: requireChromium(), headless: true, args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await red?.stop();
  });

  test('dialogs open, follow the mode, and never receive the secrets', async () => {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e: Error) => pageErrors.push(e.message));
    await page.goto(red.url);
    await page.waitForFunction(() => (globalThis as any).RED?.nodes?.node('bu1'), null, { timeout: 30_000 });
    const labels = await page.evaluate(() => {
      const RED = (globalThis as any).RED;
      return [RED.nodes.node('bu1'), RED.nodes.node('bv1')].map((n: any) => n._def.label.call(n));
    });
    assert.deepEqual(labels, ['bioAF upsert sample', 'verify bioAF webhook']);

    await page.evaluate(() => (globalThis as any).RED.editor.edit((globalThis as any).RED.nodes.node('bu1')));
    await page.waitForSelector('#node-input-mode', { state: 'visible', timeout: 15_000 });
    assert.equal(await page.isVisible('.bioaf-upsert-id'), true);
    assert.equal(await page.isVisible('.bioaf-upsert-list >> nth=0'), false);
    assert.match(await page.textContent('label[for="node-input-externalId"]'), /External id/);
    await page.selectOption('#node-input-mode', 'list');
    assert.equal(await page.isVisible('.bioaf-upsert-id'), false);
    assert.equal(await page.isVisible('.bioaf-upsert-list >> nth=0'), true);
    await page.check('#node-input-allPages');
    assert.equal(await page.isVisible('.bioaf-upsert-max'), true);
    await page.click('#node-dialog-ok');
    const saved = await page.evaluate(() => {
      const n = (globalThis as any).RED.nodes.node('bu1');
      return { mode: n.mode, allPages: n.allPages };
    });
    assert.deepEqual(saved, { mode: 'list', allPages: true });

    await page.evaluate(() => (globalThis as any).RED.editor.edit((globalThis as any).RED.nodes.node('bv1')));
    await page.waitForSelector('#node-input-tolerance', { state: 'visible', timeout: 15_000 });
    assert.equal(await page.inputValue('#node-input-tolerance'), '300');
    assert.match(await page.innerHTML('.form-tips'), /Skip body parsing/);
    await page.click('#node-dialog-cancel');

    // The editor knows a secret is set, but never gets its value.
    const creds = await (await fetch(`${red.url}/credentials/bioaf-host/bh1`)).json();
    assert.equal(creds.has_webhookSecrets, true);
    assert.equal(creds.webhookSecrets, undefined);
    assert.doesNotMatch(await page.content(), /whsec_editor/);
    assert.deepEqual(pageErrors, []);
  });
});
