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
import * as fs from 'fs';
import * as path from 'path';
import { chromiumOrSkip, CHROMIUM_ARGS, freePort, PROJECT_ROOT, requireChromium } from './browser/support';


describe('genie-command editor dialog', { skip: chromiumOrSkip() }, () => {
  let sim: LabSimulator;
  let red: NodeRedProcess;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let browser: any;

  before(async () => {
    sim = await startLabSimulator({ benchling: { rateLimit: false } });
    red = await startNodeRed({ userDir: tempDir('genie-editor'), port: await freePort(), env: { GENIE_SHAKER: GENIE_SEED.shaker } });
    await red.deploy([
      { id: 'tab1', type: 'tab', label: 'genie' },
      { id: 'gt1', type: 'genie-tenant', name: 'sim', url: sim.genie.apiBase, timeout: 10, credentials: { token: DEFAULT_GENIE_TOKEN } },
      { id: 'gc1', type: 'genie-command', z: 'tab1', tenant: 'gt1', instrument: GENIE_SEED.shaker, instrumentType: 'str', action: 'Shake', actionType: 'str', params: { RPM: '700' }, x: 200, y: 100, wires: [[], []] },
      // As example 50 deploys it: the instrument from the environment, values keyed by parameter id.
      { id: 'gc2', type: 'genie-command', z: 'tab1', tenant: 'gt1', instrument: 'GENIE_SHAKER', instrumentType: 'env', action: 'Shake', actionType: 'str', params: { '64580a01aa00000000000002': '800' }, x: 200, y: 160, wires: [[], []] },
      { id: 'gc3', type: 'genie-command', z: 'tab1', tenant: 'gt1', instrument: '${GENIE_SHAKER}', instrumentType: 'str', action: 'Shake', actionType: 'str', params: {}, x: 200, y: 220, wires: [[], []] },
      { id: 'gc4', type: 'genie-command', z: 'tab1', tenant: 'gt1', instrument: 'NOT_SET_ANYWHERE', instrumentType: 'env', action: 'Shake', actionType: 'str', params: { '64580a01aa00000000000002': '800' }, x: 200, y: 280, wires: [[], []] },
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

  test('instrument from the environment (env GENIE_SHAKER, ${GENIE_SHAKER}): the deployed node resolves it; names, not ids, label the parameters', async () => {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e: Error) => pageErrors.push(e.message));
    await page.goto(red.url);
    await page.waitForFunction(() => (globalThis as any).RED?.nodes?.node('gc2'), null, { timeout: 30_000 });
    for (const id of ['gc2', 'gc3']) {
      await page.evaluate((nid: string) => (globalThis as any).RED.editor.edit((globalThis as any).RED.nodes.node(nid)), id);
      await page.waitForFunction(() => document.querySelectorAll('#genie-command-params .genie-param').length === 3, null, { timeout: 15_000 });
      const labels = await page.$$eval('#genie-command-params label', (ls: HTMLElement[]) => ls.map((l) => l.textContent));
      assert.deepEqual(labels, ['Time', 'RPM', 'Mode'], id);
      const actions = await page.$$eval('#genie-command-actions option', (os: HTMLOptionElement[]) => os.map((o) => o.value));
      assert.ok(actions.includes('Shake'), `${id}: the shaker's actions are listed: ${actions.join(' | ')}`);
      assert.equal(await page.$eval('#genie-command-instruments', (s: HTMLSelectElement) => s.value), GENIE_SEED.shaker, `${id}: the resolved instrument is selected`);
      // The setting itself stays as it was (env / ${…}), and no empty tip box shows.
      const tipBox = await page.$eval('#genie-command-tip', (e: HTMLElement) => ({ visible: e.offsetParent !== null, text: e.textContent }));
      assert.ok(!tipBox.visible || tipBox.text, `${id}: an empty tip box is hidden (${JSON.stringify(tipBox)})`);
      if (id === 'gc2') assert.equal(await page.inputValue('#genie-command-params [data-id="64580a01aa00000000000002"]'), '800');
      await page.screenshot({ path: `${shotDir()}/genie-command-env-${id}.png` });
      await page.click('#node-dialog-cancel');
      await page.waitForFunction(() => !document.querySelector('#genie-command-params'), null, { timeout: 10_000 });
    }

    // An environment variable without a value: says so plainly; saved values keep a name-like label, never the id.
    await page.evaluate(() => (globalThis as any).RED.editor.edit((globalThis as any).RED.nodes.node('gc4')));
    await page.waitForFunction(() => /NOT_SET_ANYWHERE/.test(document.querySelector('#genie-command-tip')?.textContent ?? ''), null, { timeout: 15_000 });
    const tip = await page.textContent('#genie-command-tip');
    assert.match(String(tip), /no value where Node-RED runs/);
    const savedLabels = await page.$$eval('#genie-command-params label', (ls: HTMLElement[]) => ls.map((l) => l.textContent));
    assert.deepEqual(savedLabels, ['parameter 1']);
    assert.equal(await page.$$eval('#genie-command-actions option', (os: HTMLOptionElement[]) => os.length), 0, 'no action list without an instrument');
    await page.click('#node-dialog-cancel');

    // A command node the runtime does not know (never deployed): the route says so (404).
    const status = await page.evaluate(async () => (await fetch('labwire/genie/commands/no-such-node/target')).status);
    assert.equal(status, 404);
    assert.deepEqual(pageErrors, []);
    await page.close();
  });
});

function shotDir(): string {
  const dir = path.join(PROJECT_ROOT, 'test', 'out', 'screenshots');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
