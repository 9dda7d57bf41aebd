/**
 * The ot2-run and ot2-robot dialogs in a real browser against a real Node-RED process with the
 * pack: the dialogs open without script errors, the typed inputs (with the custom "none" type) are
 * there, help and labels come from the catalogues, and edited values are saved on the node.
 * Skipped on a developer machine without Chromium; in CI a missing Chromium fails (test/browser/support).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startNodeRed, NodeRedProcess } from '../scripts/node-red-process';
import { tempDir } from './support/nodered';
import { chromiumOrSkip, CHROMIUM_ARGS, freePort, requireChromium } from './browser/support';


describe('ot2 editor dialogs', { skip: chromiumOrSkip() }, () => {
  let red: NodeRedProcess;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let browser: any;

  before(async () => {
    red = await startNodeRed({ userDir: tempDir('ot2-editor'), port: await freePort() });
    await red.deploy([
      { id: 'tab1', type: 'tab', label: 'ot2' },
      { id: 'robot1', type: 'ot2-robot', name: 'bench robot', host: '127.0.0.1', port: 31950, generation: 'auto', timeout: 15 },
      { id: 'run1', type: 'ot2-run', z: 'tab1', robot: 'robot1', protocol: 'payload', protocolType: 'msg', protocolName: 'filename', protocolNameType: 'msg', supportFiles: '', supportFilesType: 'none', parameters: 'runTimeParameters', parametersType: 'msg', parameterFiles: 'runTimeParameterFiles', parameterFilesType: 'msg', x: 200, y: 100, wires: [[], []] },
    ]);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { chromium } = require('playwright-core');
    browser = await chromium.launch({ executablePath: requireChromium(), headless: true, args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await red?.stop();
  });

  test('ot2-run dialog: typed inputs incl. "none", labels from the catalogue, values saved', async () => {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e: Error) => pageErrors.push(e.message));
    await page.goto(red.url);
    await page.waitForFunction(() => (globalThis as any).RED?.nodes?.node('run1'), null, { timeout: 30_000 });
    await page.evaluate(() => (globalThis as any).RED.editor.edit((globalThis as any).RED.nodes.node('run1')));
    await page.waitForSelector('#node-input-protocol', { state: 'attached', timeout: 15_000 });
    await page.waitForFunction(() => document.querySelectorAll('.red-ui-typedInput-container').length >= 6, null, { timeout: 15_000 });
    const labels = await page.$$eval('.red-ui-editor label span[data-i18n]', (ls: HTMLElement[]) => ls.map((l) => l.textContent));
    assert.ok(labels.includes('Support files') && labels.includes('On stop/redeploy'), labels.join(' | '));
    assert.ok(labels.includes('CSV files') && labels.includes('Labware offsets'), labels.join(' | '));
    // a node saved before these settings existed still reads msg.labwareOffsets
    assert.equal(await page.evaluate(() => (globalThis as any).$('#node-input-offsets').typedInput('type')), 'msg');
    const supportType = await page.evaluate(() => (globalThis as any).$('#node-input-supportFiles').typedInput('type'));
    assert.equal(supportType, 'none');
    await page.evaluate(() => {
      const $ = (globalThis as any).$;
      $('#node-input-protocol').typedInput('type', 'str');
      $('#node-input-protocol').typedInput('value', '/data/protocols/normalise.py');
      $('#node-input-onClose').val('stop');
      $('#node-input-parameterFiles').typedInput('value', 'plateFiles');
      $('#node-input-recentOffsets').prop('checked', true);
    });
    await page.click('#node-dialog-ok');
    const saved = await page.evaluate(() => {
      const n = (globalThis as any).RED.nodes.node('run1');
      return { protocol: n.protocol, protocolType: n.protocolType, onClose: n.onClose, supportFilesType: n.supportFilesType, parameterFiles: n.parameterFiles, recentOffsets: n.recentOffsets };
    });
    assert.deepEqual(saved, { protocol: '/data/protocols/normalise.py', protocolType: 'str', onClose: 'stop', supportFilesType: 'none', parameterFiles: 'plateFiles', recentOffsets: true });
    // the config node's dialog
    await page.evaluate(() => (globalThis as any).RED.editor.editConfig('', 'ot2-robot', 'robot1'));
    await page.waitForSelector('#node-config-input-generation', { timeout: 15_000 });
    const options = await page.$$eval('#node-config-input-generation option', (os: HTMLOptionElement[]) => os.map((o) => o.textContent));
    assert.deepEqual(options, ['auto (ask the robot)', 'sessions (software 4.x)', 'runs (software 5.x – 8.x)']);
    assert.deepEqual(pageErrors, []);
    await page.close();
  });
});
