/**
 * The "Lab files" editor sidebar (plugin lab-files) in a real browser against a real Node-RED
 * process (4.1 here; the Node-RED 5 lane runs this same file on 5.x under Node 22) with the PACKED
 * package installed, running the watch folder → upload → processor → poll pipeline against the
 * simulator:
 *  - the tab registers and its empty state is translated (en-US, ja);
 *  - three files dropped into the folder, one named FAIL-…, appear in the OPEN sidebar without a
 *    reload (comms `labwire/files`), the two good ones done, the FAIL one failed with the
 *    simulator's reason, its code, the node that failed and the error file;
 *  - Retry on the FAIL row sends it again (attempts 2, again without a reload);
 *  - the same view in Japanese;
 *  - a user without `labwire.write` (here: anonymous with read only) sees the files but no Retry or
 *    Skip, and the API refuses the action (403);
 *  - no console errors, no failed request.
 * Screenshots: test/out/screenshots/node-red-<version>/sidebar-*.png (git-ignored).
 *
 * Without Chromium: skipped on a developer machine, a FAILURE when CI=true.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, LabSimulator, DEFAULT_API_KEY, SEED } from '../../simulator';
import { startNodeRed, NodeRedProcess } from '../../scripts/node-red-process';
import { tempDir } from '../support/nodered';
import { CHROMIUM_ARGS, PROJECT_ROOT, chromiumOrSkip, freePort, installTarball, nodeRedVersion, npmPack, requireChromium } from './support';

/* eslint-disable @typescript-eslint/no-explicit-any */
declare const RED: any;

const NR_VERSION = nodeRedVersion();
const SHOTS = path.join(PROJECT_ROOT, 'test', 'out', 'screenshots', `node-red-${NR_VERSION}`);
const FAIL_NAME = 'FAIL-plate-3.csv';
const REASON = 'Output file processing failed (simulated)';
const OPERATOR = { username: 'operator', password: 'operator-test-password' };

interface Token {
  access_token: string;
  expires_in: number;
  token_type: string;
}

function catalogue(lang: string): any {
  return JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'locales', lang, 'lab-files.json'), 'utf8'))['lab-files'];
}

function pipeline(url: string, folder: string, archive: string): unknown[] {
  return [
    { id: 'tab', type: 'tab', label: 'instrument files' },
    { id: 'tenant', type: 'benchling-tenant', url, rateLimit: 600, timeout: 5, credentials: { apiKey: DEFAULT_API_KEY } },
    // prettier-ignore
    { id: 'watch', type: 'lab-watch-folder', z: 'tab', name: 'plate reader', folder, include: '*.csv', stability: 0.2, probeInterval: 0.1, rescanInterval: 0.5, postAction: 'move', archiveFolder: archive, retryBase: 0.2, retryMax: 0.5, x: 120, y: 80, wires: [['upload']] },
    { id: 'upload', type: 'benchling-upload-blob', z: 'tab', tenant: 'tenant', file: 'payload', fileType: 'msg', x: 320, y: 80, wires: [['create']] },
    // prettier-ignore
    { id: 'create', type: 'benchling-create-processor', z: 'tab', tenant: 'tenant', assayRunId: SEED.runs[0].id, assayRunIdType: 'str', configName: SEED.outputConfigName, configNameType: 'str', fileId: 'blobId', fileIdType: 'msg', x: 520, y: 80, wires: [['poll']] },
    { id: 'poll', type: 'benchling-poll-task', z: 'tab', name: 'processing done?', tenant: 'tenant', taskId: 'taskId', taskIdType: 'msg', interval: 0.05, maxInterval: 0.2, timeout: 20, x: 720, y: 80, wires: [['watch'], ['watch']] },
    { id: 'catcher', type: 'catch', z: 'tab', scope: ['upload', 'create', 'poll'], uncaught: false, x: 320, y: 160, wires: [['watch']] },
  ];
}

describe(`Lab files sidebar in Chromium, packed package on Node-RED ${NR_VERSION}`, { skip: chromiumOrSkip(), timeout: 10 * 60_000 }, () => {
  let sim: LabSimulator;
  let red: NodeRedProcess;
  let browser: any;
  let token: Token;
  const log: string[] = [];
  const problems: string[] = [];
  const root = tempDir('sidebar');
  const folder = path.join(root, 'instrument');
  const archive = path.join(root, 'archive');

  /** A fresh page in `lang`, the editor loaded (logged in as the operator unless `anonymous`), the Lab files tab shown. */
  async function openSidebar(lang: string, anonymous = false): Promise<any> {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: lang });
    await context.addInitScript(
      ([l, tokens]: [string, Token | null]) => {
        localStorage.setItem('editor-language', l);
        // Where the editor keeps its login (RED.settings "auth-tokens", editor at the root path).
        if (tokens) localStorage.setItem('auth-tokens', JSON.stringify(tokens));
        else localStorage.removeItem('auth-tokens');
      },
      [lang, anonymous ? null : token],
    );
    const page = await context.newPage();
    page.on('pageerror', (e: Error) => problems.push(`${lang} pageerror: ${e.message}`));
    page.on('console', (m: any) => {
      if (m.type() === 'error') problems.push(`${lang} console.error: ${m.text()} (${m.location()?.url ?? ''})`);
    });
    page.on('requestfailed', (r: any) => {
      // A page closed by the test cancels its open comms/polls; anything else is a problem.
      if (!/ERR_ABORTED/.test(r.failure()?.errorText ?? '')) problems.push(`${lang} request failed: ${r.url()} ${r.failure()?.errorText}`);
    });
    page.on('response', (r: any) => {
      if (r.status() >= 400) problems.push(`${lang} HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
    });
    await page.goto(red.url);
    await page.waitForFunction(() => (globalThis as any).RED?.sidebar && document.querySelector('#red-ui-palette .red-ui-palette-node'), null, { timeout: 60_000 });
    await page.waitForFunction(() => RED.workspaces.active() && RED.nodes.version && RED.nodes.version(), null, { timeout: 60_000 });
    await page.waitForFunction(() => !!document.getElementById('labwire-files-sidebar'), null, { timeout: 30_000 });
    await page.evaluate(() => {
      (globalThis as any).__labwireNoReload = true;
      RED.sidebar.show('labwire-files');
    });
    await page.waitForSelector('#labwire-files-sidebar', { state: 'visible', timeout: 15_000 });
    await page.waitForFunction(() => !document.querySelector('#labwire-files-sidebar .labwire-files-loading'), null, { timeout: 15_000 });
    return page;
  }

  function rowSel(name: string): string {
    return `#labwire-files-sidebar .labwire-files-row:has(.labwire-files-name:text-is("${name}"))`;
  }

  async function rowInfo(page: any): Promise<Array<{ name: string; state: string; attempts: string; reason: string }>> {
    return page.$$eval('#labwire-files-sidebar .labwire-files-row', (rows: Element[]) =>
      rows.map((r) => ({
        name: r.querySelector('.labwire-files-name')?.textContent ?? '',
        state: r.getAttribute('data-state') ?? '',
        attempts: r.querySelector('.labwire-files-attempts td:last-child')?.textContent ?? '',
        reason: r.querySelector('.labwire-files-reason td:last-child')?.textContent ?? '',
      })),
    );
  }

  async function counts(page: any): Promise<Record<string, string>> {
    return page.$$eval('#labwire-files-sidebar .labwire-files-count', (els: Element[]) =>
      Object.fromEntries(els.map((e) => [e.getAttribute('data-state'), e.querySelector('.labwire-files-count-n')?.textContent ?? ''])),
    );
  }

  before(async () => {
    const chromium = requireChromium();
    fs.mkdirSync(SHOTS, { recursive: true });
    for (const d of [folder, archive]) fs.mkdirSync(d, { recursive: true });
    sim = await startLabSimulator({ benchling: { rateLimit: false } });
    const { tarball } = npmPack(root);
    const userDir = path.join(root, 'userdir');
    installTarball(userDir, tarball);
    // A login: the operator may do everything; anyone else may only look (Node-RED's `read`, which
    // covers `labwire.read` but not `labwire.write`).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { hashSync } = require('@node-rs/bcrypt') as { hashSync(p: string, cost: number): string };
    const adminAuth = { type: 'credentials', users: [{ username: OPERATOR.username, password: hashSync(OPERATOR.password, 8), permissions: '*' }], default: { permissions: 'read' } };
    red = await startNodeRed({ userDir, port: await freePort(), linkPack: false, settings: { adminAuth }, env: { NO_PROXY: '127.0.0.1,localhost' }, onLog: (l) => log.push(l) });
    const login = await fetch(`${red.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'node-red-admin', grant_type: 'password', scope: '*', ...OPERATOR }),
    });
    assert.equal(login.status, 200, 'the operator logs in');
    token = (await login.json()) as Token;
    const deployed = await fetch(`${red.url}/flows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token.access_token}`, 'Node-RED-Deployment-Type': 'full', 'Node-RED-API-Version': 'v1' },
      body: JSON.stringify(pipeline(sim.benchling.url, folder, archive)),
    });
    assert.ok(deployed.status === 200 || deployed.status === 204, `deploy: HTTP ${deployed.status} ${await deployed.text()}`);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { chromium: pw } = require('playwright-core');
    browser = await pw.launch({ executablePath: chromium, headless: true, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    await red?.stop();
    await sim?.close();
  });

  test('the tab registers; its empty state and counts are translated (en-US, ja)', async () => {
    for (const lang of ['en-US', 'ja']) {
      const cat = catalogue(lang);
      const page = await openSidebar(lang);
      const view = await page.evaluate(() => ({
        menu: !!document.getElementById('menu-item-view-menu-labwire-files'),
        empty: document.querySelector('#labwire-files-sidebar .labwire-files-empty')?.textContent ?? null,
        labels: Array.from(document.querySelectorAll('#labwire-files-sidebar .labwire-files-count-label')).map((e) => e.textContent),
        search: (document.querySelector('#labwire-files-sidebar .labwire-files-search') as HTMLInputElement | null)?.placeholder ?? null,
      }));
      assert.ok(view.menu, `${lang}: the tab is in View ▸ sidebar tabs`);
      assert.equal(view.empty, cat.empty, `${lang}: the empty state`);
      assert.deepEqual(view.labels, ['waiting', 'in-progress', 'retrying', 'done', 'failed'].map((s) => cat.state[s]), `${lang}: the count labels`);
      assert.equal(view.search, cat.search);
      assert.deepEqual(await counts(page), { waiting: '0', 'in-progress': '0', retrying: '0', done: '0', failed: '0' });
      await page.screenshot({ path: path.join(SHOTS, `sidebar-empty-${lang}.png`) });
      await page.context().close();
    }
    assert.deepEqual(problems, []);
  });

  test('files appear in the open sidebar without a reload; the FAIL file shows the simulator\'s reason; Retry sends it again (attempt 2)', async () => {
    const page = await openSidebar('en-US');
    const names = ['plate-1.csv', 'plate-2.csv', FAIL_NAME];
    for (const n of names) fs.writeFileSync(path.join(folder, n), `well,od\nA1,0.${n.length}\n`);

    // Live: the rows come over comms into the page opened before the files existed.
    await page.waitForFunction(
      (fail: string) => {
        const rows = Array.from(document.querySelectorAll('#labwire-files-sidebar .labwire-files-row'));
        const state = (n: string) => rows.find((r) => r.querySelector('.labwire-files-name')?.textContent === n)?.getAttribute('data-state');
        return state('plate-1.csv') === 'done' && state('plate-2.csv') === 'done' && state(fail) === 'failed';
      },
      FAIL_NAME,
      { timeout: 60_000, polling: 200 },
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}\nrows: ${JSON.stringify(await rowInfo(page))}\nNode-RED log:\n${log.slice(-30).join('\n')}`);
    });
    assert.equal(await page.evaluate(() => (globalThis as any).__labwireNoReload), true, 'the page was not reloaded');
    assert.deepEqual(await counts(page), { waiting: '0', 'in-progress': '0', retrying: '0', done: '2', failed: '1' });
    assert.equal(await page.$eval('#labwire-files-sidebar .labwire-files-count[data-state="failed"] .labwire-files-count-n', (e: Element) => getComputedStyle(e).color) !==
      (await page.$eval('#labwire-files-sidebar .labwire-files-count[data-state="done"] .labwire-files-count-n', (e: Element) => getComputedStyle(e).color)), true, 'failed is shown in its own (red) colour');

    // The FAIL row, expanded: reason, code, node, error file, ids, stages, attempts.
    await page.click(`${rowSel(FAIL_NAME)} .labwire-files-head`);
    const detail = await page.$eval(rowSel(FAIL_NAME), (r: Element) => ({
      text: (r as HTMLElement).innerText,
      reason: r.querySelector('.labwire-files-reason td:last-child')?.textContent ?? '',
      attempts: r.querySelector('.labwire-files-attempts td:last-child')?.textContent ?? '',
      errorFile: r.querySelector('a.labwire-files-error-file')?.getAttribute('href') ?? null,
      stagesShown: Array.from(r.querySelectorAll('tr[data-stage]')).filter((tr) => !tr.querySelector('.labwire-files-missing')).map((tr) => tr.getAttribute('data-stage')),
      retry: !!r.querySelector('button.labwire-files-retry'),
      skip: !!r.querySelector('button.labwire-files-skip'),
    }));
    assert.match(detail.reason, /Output file processing failed \(simulated\)/);
    assert.match(detail.text, /TASK_FAILED/);
    assert.match(detail.text, /processing done\?/, 'the node that failed, by its name');
    assert.ok(detail.errorFile && /^https?:\/\//.test(detail.errorFile), `a link to the error file: ${detail.errorFile}`);
    assert.equal(detail.attempts, '1');
    for (const s of ['seen', 'stable', 'uploaded', 'processorCreated', 'taskFinished']) assert.ok(detail.stagesShown.includes(s), `stage ${s} has a time (${detail.stagesShown.join(', ')})`);
    assert.ok(detail.retry && detail.skip, 'Retry and Skip on a failed row (no adminAuth: every permission)');
    const goodRow = await page.$eval(rowSel('plate-1.csv'), (r: Element) => ({ retry: !!r.querySelector('button.labwire-files-retry') }));
    assert.equal(goodRow.retry, false, 'no Retry on a done row');
    await page.screenshot({ path: path.join(SHOTS, 'sidebar-failed-en-US.png') });

    // Retry: sent again through the pipeline; the row follows live to attempt 2.
    await page.click(`${rowSel(FAIL_NAME)} button.labwire-files-retry`);
    await page.waitForFunction(
      (fail: string) => {
        const r = Array.from(document.querySelectorAll('#labwire-files-sidebar .labwire-files-row')).find((x) => x.querySelector('.labwire-files-name')?.textContent === fail);
        return r?.querySelector('.labwire-files-attempts td:last-child')?.textContent === '2' && r.getAttribute('data-state') !== 'in-progress' && r.getAttribute('data-state') !== 'waiting';
      },
      FAIL_NAME,
      { timeout: 60_000, polling: 200 },
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}\nrows: ${JSON.stringify(await rowInfo(page))}\nNode-RED log:\n${log.slice(-30).join('\n')}`);
    });
    assert.equal(await page.evaluate(() => (globalThis as any).__labwireNoReload), true, 'the page was not reloaded');
    const afterRetry = (await rowInfo(page)).find((r) => r.name === FAIL_NAME)!;
    assert.equal(afterRetry.attempts, '2');
    await page.screenshot({ path: path.join(SHOTS, 'sidebar-retried-en-US.png') });
    await page.context().close();
    assert.deepEqual(problems, []);
  });

  test('the same view in Japanese', async () => {
    const cat = catalogue('ja');
    const page = await openSidebar('ja');
    await page.waitForSelector(rowSel(FAIL_NAME), { timeout: 15_000 });
    await page.click(`${rowSel(FAIL_NAME)} .labwire-files-head`);
    const view = await page.$eval(rowSel(FAIL_NAME), (r: Element) => (r as HTMLElement).innerText);
    assert.ok(view.includes(cat.section.failure), 'the detail is in Japanese');
    assert.ok(view.includes(cat.stage.processorCreated));
    assert.ok(view.includes(REASON), 'the service\'s own message is shown as it came');
    assert.ok(view.includes(cat.retry) && view.includes(cat.skip));
    await page.screenshot({ path: path.join(SHOTS, 'sidebar-failed-ja.png') });
    await page.context().close();
    assert.deepEqual(problems, []);
  });

  test('the state filter and the search ask the API (100 at a time, state, q) and show only what matches', async () => {
    const page = await openSidebar('en-US');
    const asked: string[] = [];
    page.on('request', (r: any) => {
      const u = new URL(r.url());
      if (u.pathname === '/labwire/files') asked.push(u.search);
    });
    await page.waitForSelector(rowSel(FAIL_NAME), { timeout: 15_000 });
    const names = async () => (await rowInfo(page)).map((r) => r.name).sort();
    assert.deepEqual(await names(), ['FAIL-plate-3.csv', 'plate-1.csv', 'plate-2.csv']);
    assert.equal(await page.$('#labwire-files-sidebar .labwire-files-more-button'), null, 'no "more" when the API has no next page');

    // A click on the failed count filters (and selects it in the filter box).
    await page.click('#labwire-files-sidebar .labwire-files-count[data-state="failed"]');
    await page.waitForFunction(() => document.querySelectorAll('#labwire-files-sidebar .labwire-files-row').length === 1 && !document.querySelector('#labwire-files-sidebar .labwire-files-loading'));
    assert.deepEqual(await names(), [FAIL_NAME]);
    assert.equal(await page.$eval('#labwire-files-sidebar select.labwire-files-filter', (e: HTMLSelectElement) => e.value), 'failed');
    await page.selectOption('#labwire-files-sidebar select.labwire-files-filter', 'done');
    await page.waitForFunction(() => document.querySelectorAll('#labwire-files-sidebar .labwire-files-row[data-state="done"]').length === 2 && !document.querySelector('#labwire-files-sidebar .labwire-files-row:not([data-state="done"])'));
    await page.selectOption('#labwire-files-sidebar select.labwire-files-filter', '');

    // The search.
    await page.fill('#labwire-files-sidebar input.labwire-files-search', 'plate-2');
    await page.press('#labwire-files-sidebar input.labwire-files-search', 'Enter');
    await page.waitForFunction(() => {
      const rows = document.querySelectorAll('#labwire-files-sidebar .labwire-files-row');
      return rows.length === 1 && rows[0].querySelector('.labwire-files-name')?.textContent === 'plate-2.csv';
    });
    await page.fill('#labwire-files-sidebar input.labwire-files-search', 'no-such-file');
    await page.press('#labwire-files-sidebar input.labwire-files-search', 'Enter');
    await page.waitForSelector('#labwire-files-sidebar .labwire-files-empty');
    assert.equal(await page.$eval('#labwire-files-sidebar .labwire-files-empty', (e: Element) => e.textContent), catalogue('en-US').noMatch);

    const params = asked.map((q) => Object.fromEntries(new URLSearchParams(q)));
    assert.ok(params.length >= 4, JSON.stringify(params));
    assert.ok(params.every((p) => p.limit === '100'), `every page is 100 rows: ${JSON.stringify(params)}`);
    assert.ok(params.some((p) => p.state === 'failed' && !p.q));
    assert.ok(params.some((p) => p.state === 'done'));
    assert.ok(params.some((p) => p.q === 'plate-2' && !p.state));
    await page.context().close();
    assert.deepEqual(problems, []);
  });

  test('without labwire.write (anonymous, read only) the files show but Retry and Skip do not, and the API refuses them', async () => {
    const page = await openSidebar('en-US', true);
    await page.waitForSelector(rowSel(FAIL_NAME), { timeout: 15_000 });
    assert.equal(await page.evaluate(() => RED.user.hasPermission('labwire.write')), false);
    await page.click(`${rowSel(FAIL_NAME)} .labwire-files-head`);
    const row = await page.$eval(rowSel(FAIL_NAME), (r: Element) => ({
      reason: r.querySelector('.labwire-files-reason td:last-child')?.textContent ?? '',
      buttons: r.querySelectorAll('button.labwire-files-retry, button.labwire-files-skip').length,
    }));
    assert.match(row.reason, /Output file processing failed \(simulated\)/);
    assert.equal(row.buttons, 0, 'no Retry or Skip without labwire.write');
    await page.screenshot({ path: path.join(SHOTS, 'sidebar-read-only-en-US.png') });
    await page.context().close();
    const id = ((await (await fetch(`${red.url}/labwire/files?q=${encodeURIComponent(FAIL_NAME)}`)).json()) as { files: Array<{ id: string }> }).files[0].id;
    const refused = await fetch(`${red.url}/labwire/files/${encodeURIComponent(id)}/skip`, { method: 'POST' });
    assert.equal(refused.status, 403, 'the API refuses a skip without labwire.write');
    assert.deepEqual(problems, []);
  });
});
