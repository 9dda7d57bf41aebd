/**
 * The genie-command dialog in a real browser against a real Node-RED process with the pack: the
 * instrument list, the action list and the parameter form come from the tenant through the admin
 * endpoints (relative URLs), and the values typed into the form are saved on the node.
 * Skipped on a developer machine without Chromium; in CI a missing Chromium fails (test/browser/support).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startLabSimulator, LabSimulator, GENIE_SEED, DEFAULT_GENIE_TOKEN } from '../simulator';
import { startNodeRed, NodeRedProcess } from '../scripts/node-red-process';
import { tempDir } from './support/nodered';
import { chromiumOrSkip, CHROMIUM_ARGS, freePort, requireChromium } from './browser/support';


describe('genie-command editor dialog', { skip: chromiumOrSkip() }, () => {
  let sim: LabSimulator;
  let red: NodeRedProcess;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let browser: any;

  before(async () => {
    sim = await startLabSimulator({ benchling: { rateLimit: false } });
    red = await startNodeRed({ userDir: tempDir('genie-editor'), port: await freePort() });
    await red.deploy([
      { id: 'tab1', type: 'tab', label: 'genie' },
      { id: 'gt1', type: 'genie-tenant', name: 'sim', url: sim.genie.apiBase, timeout: 10, credentials: { token: DEFAULT_GENIE_TOKEN } },
      { id: 'gc1', type: 'genie-command', z: 'tab1', tenant: 'gt1', instrument: GENIE_SEED.shaker, instrumentType: 'str', action: 'Shake', actionType: 'str', params: { RPM: '700' }, x: 200, y: 100, wires: [[], []] },
    ]);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { chromium } = require('playwright-core');
    browser = await chromium.launch({ executablePath: requireChromium(), headless: true, args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await red?.stop();
    await sim?.close();
  });

  test('lists instruments and actions, shows the parameter form, saves the values', async () => {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e: Error) => pageErrors.push(e.message));
    await page.goto(red.url);
    await page.waitForFunction(() => (globalThis as any).RED?.nodes?.node('gc1'), null, { timeout: 30_000 });
    await page.evaluate(() => (globalThis as any).RED.editor.edit((globalThis as any).RED.nodes.node('gc1')));

    // The deployed tenant's instruments, the shaker's actions, and the Shake form (saved RPM kept, by name).
    await page.waitForFunction(() => document.querySelectorAll('#genie-command-instruments option').length === 5, null, { timeout: 15_000 });
    const instruments = await page.$$eval('#genie-command-instruments option', (os: HTMLOptionElement[]) => os.map((o) => o.textContent));
    assert.ok(instruments.some((t: string) => /Orbital Shaker 1 \(shaker\)/.test(t)), instruments.join(' | '));
    await page.waitForFunction(() => document.querySelectorAll('#genie-command-params .genie-param').length === 3, null, { timeout: 15_000 });
    const labels = await page.$$eval('#genie-command-params label', (ls: HTMLElement[]) => ls.map((l) => l.textContent));
    assert.deepEqual(labels, ['Time', 'RPM', 'Mode']);
    assert.equal(await page.inputValue('#genie-command-params [data-id="64580a01aa00000000000002"]'), '700');
    assert.match(String(await page.getAttribute('#genie-command-params [data-id="64580a01aa00000000000001"]', 'placeholder')), /time, 1–7200/);

    // Pick the plate reader and its action from the lists: the form follows.
    await page.selectOption('#genie-command-instruments', GENIE_SEED.reader);
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#genie-command-actions option')).some((o) => o.textContent?.startsWith('Read Plate')), null, { timeout: 15_000 });
    await page.selectOption('#genie-command-actions', 'Read Plate');
    await page.waitForFunction(() => document.querySelectorAll('#genie-command-params .genie-param').length === 2, null, { timeout: 15_000 });
    await page.fill('#genie-command-params [data-id="64580a03aa00000000000001"]', 'P-42');
    await page.selectOption('#genie-command-params [data-id="64580a03aa00000000000002"]', '600');
    await page.click('#node-dialog-ok');
    const saved = await page.evaluate(() => {
      const n = (globalThis as any).RED.nodes.node('gc1');
      return { instrument: n.instrument, action: n.action, params: n.params };
    });
    assert.deepEqual(saved, {
      instrument: GENIE_SEED.reader,
      action: 'Read Plate',
      params: { '64580a03aa00000000000001': 'P-42', '64580a03aa00000000000002': '600' },
    });
    assert.deepEqual(pageErrors, []);
    await page.close();
  });
});
