/**
 * Example layouts as a user sees them: every example flow, deployed against the lab simulator
 * (scripts/whole-lab: the environment `npm start` gives), shown in the editor in Chromium. For each
 * example the node statuses must not overlap one another or cover another node, and every node and
 * status must be visible in a 1600-px-wide browser window at 100 % zoom without scrolling (the
 * workspace next to the palette, with the sidebar closed: about 1400 px; MAX_WIDTH is the hard
 * bound).
 *
 * Two passes per example:
 *  - real: the statuses the runtime reports (for 50, after a CSV went through the loop and a plate
 *    was prepared: the statuses the demo shows);
 *  - room: every node of the pack given the same status of STATUS_ROOM characters, so a layout
 *    leaves room for the statuses the nodes can show, not only for the ones this run happened to
 *    produce.
 * Screenshots go to test/out/screenshots/layout/ (git-ignored).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { startWholeLab, WholeLab, WHOLE_LAB_EXAMPLE } from '../../scripts/whole-lab';
import { tempDir } from '../support/nodered';
import { CHROMIUM_ARGS, PROJECT_ROOT, chromiumOrSkip, freePort, packTypes, requireChromium } from './support';

/* eslint-disable @typescript-eslint/no-explicit-any */
declare const RED: any;

const SHOTS = path.join(PROJECT_ROOT, 'test', 'out', 'screenshots', 'layout');
const WINDOW_WIDTH = 1600;
const MAX_WIDTH = 1600;
/** A status as long as the pack's longer everyday ones ("uploading plate-17.csv 100 %", "Shake: running 12 s"). */
const STATUS_ROOM = 'uploading plate-2026-12.csv 100 %';
const PACK_TYPES = packTypes().nodes;
const EXAMPLES = fs
  .readdirSync(path.join(PROJECT_ROOT, 'examples'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.replace(/\.json$/, ''))
  .sort();

interface Box {
  id: string;
  label: string;
  kind: 'node' | 'status';
  left: number;
  top: number;
  right: number;
  bottom: number;
}

function overlap(a: Box, b: Box): boolean {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

/** Problems of one example's layout: statuses overlapping statuses or other nodes, anything past MAX_WIDTH. */
function layoutProblems(boxes: Box[], visibleWidth: number): string[] {
  const problems: string[] = [];
  const statuses = boxes.filter((b) => b.kind === 'status');
  for (let i = 0; i < statuses.length; i++) {
    for (let j = i + 1; j < statuses.length; j++) {
      if (overlap(statuses[i], statuses[j])) problems.push(`status of "${statuses[i].label}" overlaps the status of "${statuses[j].label}"`);
    }
    for (const n of boxes.filter((b) => b.kind === 'node' && b.id !== statuses[i].id)) {
      if (overlap(statuses[i], n)) problems.push(`status of "${statuses[i].label}" runs into node "${n.label}"`);
    }
  }
  const limit = Math.min(MAX_WIDTH, visibleWidth);
  for (const b of boxes) if (b.right > limit) problems.push(`${b.kind} of "${b.label}" ends at x=${Math.round(b.right)}, past the ${Math.round(limit)} px a ${WINDOW_WIDTH}-px window shows`);
  return problems;
}

describe('example layouts: statuses never overlap, every example fits 1600 px', { skip: chromiumOrSkip(), timeout: 10 * 60_000 }, () => {
  let lab: WholeLab;
  let browser: any;
  let page: any;
  const pageErrors: string[] = [];

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    lab = await startWholeLab({ dir: tempDir('examples-layout'), port: await freePort(), simulator: { benchling: { rateLimit: false, taskDurationMs: 200 } } });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { chromium } = require('playwright-core');
    browser = await chromium.launch({ executablePath: requireChromium(), headless: true, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: WINDOW_WIDTH, height: 900 } });
    page.on('pageerror', (e: Error) => pageErrors.push(e.message));
  });
  after(async () => {
    await browser?.close();
    await lab?.close();
  });

  async function openEditor(): Promise<void> {
    await page.goto(lab.red.url);
    await page.waitForFunction(() => (globalThis as any).RED?.nodes?.version?.() && RED.workspaces.active(), null, { timeout: 60_000 });
    // The sidebar closed (View ▸ Show sidebar, Ctrl+Space): the workspace a 1600-px window gives a flow.
    await page.evaluate(() => RED.menu.setSelected('menu-item-sidebar', false));
    await page.waitForTimeout(300);
  }

  /** The width of workspace visible without scrolling, at zoom 1. */
  async function visibleWidth(): Promise<number> {
    return page.evaluate(() => (document.querySelector('#red-ui-workspace-chart') as HTMLElement).clientWidth);
  }

  /** Node and status boxes of the active tab, in workspace coordinates (zoom 1, origin at the canvas). */
  async function boxes(): Promise<Box[]> {
    return page.evaluate(() => {
      const svg = document.querySelector('#red-ui-workspace-chart svg') as SVGSVGElement;
      const origin = svg.getBoundingClientRect();
      const scale = RED.view.scale ? RED.view.scale() : 1;
      const rel = (r: DOMRect) => ({ left: (r.left - origin.left) / scale, top: (r.top - origin.top) / scale, right: (r.right - origin.left) / scale, bottom: (r.bottom - origin.top) / scale });
      const out: any[] = [];
      document.querySelectorAll('#red-ui-workspace-chart g.red-ui-flow-node-group').forEach((g) => {
        const id = g.id;
        const n = RED.nodes.node(id);
        if (!n) return;
        const label = n.name || n.type;
        const body = g.querySelector('.red-ui-flow-node') as SVGGraphicsElement | null;
        if (body) out.push({ id, label, kind: 'node', ...rel(body.getBoundingClientRect()) });
        const status = g.querySelector('.red-ui-flow-node-status-group') as SVGGraphicsElement | null;
        const text = g.querySelector('.red-ui-flow-node-status-label')?.textContent ?? '';
        if (status && text.trim() && getComputedStyle(status).display !== 'none') {
          const r = status.getBoundingClientRect();
          if (r.width > 0) out.push({ id, label, kind: 'status', ...rel(r) });
        }
      });
      return out;
    });
  }

  async function showOnly(tabLabelPart: string | null): Promise<void> {
    await page.evaluate((part: string | null) => {
      const tabs: any[] = [];
      RED.nodes.eachWorkspace((w: any) => tabs.push(w));
      const tab = part ? tabs.find((w) => String(w.label).includes(part)) ?? tabs[tabs.length - 1] : tabs[tabs.length - 1];
      RED.workspaces.show(tab.id);
      RED.view.scale && RED.view.zoomZero && RED.view.zoomZero();
      const chart = document.querySelector('#red-ui-workspace-chart') as HTMLElement;
      chart.scrollLeft = 0;
      chart.scrollTop = 0;
    }, tabLabelPart);
    await page.waitForTimeout(300);
  }

  /** Every node of the pack on the active tab gets the same status of STATUS_ROOM characters. */
  async function roomStatuses(): Promise<void> {
    await page.evaluate(
      ([types, text]: [string[], string]) => {
        const active = RED.workspaces.active();
        RED.nodes.eachNode((n: any) => {
          if (n.z !== active || !types.includes(n.type)) return;
          n.status = { fill: 'green', shape: 'dot', text };
          n.dirtyStatus = true;
          n.dirty = true;
        });
        RED.view.redraw(true);
      },
      [PACK_TYPES, STATUS_ROOM],
    );
    await page.waitForTimeout(300);
  }

  test('50 - the whole lab loop, after a file went through and a plate was prepared (as npm start shows it)', async () => {
    fs.writeFileSync(path.join(lab.dirs.instrument, 'plate-P1.csv'), 'plate,well,od600\nP1,A1,0.5\n');
    const res = await fetch(`${lab.red.url}/inject/abcd000000000014`, { method: 'POST' });
    assert.equal(res.status, 200);
    // The loop's end: the file archived, the shaker done.
    const deadline = Date.now() + 120_000;
    while (!fs.readdirSync(lab.dirs.archive).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    assert.ok(fs.readdirSync(lab.dirs.archive).length, 'the sample file was not archived');
    await openEditor();
    await page.waitForFunction(
      () => {
        let shown = 0;
        document.querySelectorAll('#red-ui-workspace-chart .red-ui-flow-node-status-label').forEach((t) => {
          if (t.textContent?.trim()) shown++;
        });
        return shown >= 8;
      },
      null,
      { timeout: 120_000 },
    );
    await showOnly(null);
    const real = await boxes();
    await page.screenshot({ path: path.join(SHOTS, `${WHOLE_LAB_EXAMPLE}-running.png`), fullPage: true });
    assert.ok(real.filter((b) => b.kind === 'status').length >= 8, 'the loop shows its statuses');
    assert.deepEqual(layoutProblems(real, await visibleWidth()), [], `${WHOLE_LAB_EXAMPLE} as it runs`);
  });

  for (const example of EXAMPLES) {
    test(`${example}: real statuses and room for a ${STATUS_ROOM.length}-character status under every node`, async () => {
      if (example !== WHOLE_LAB_EXAMPLE) {
        const flow = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'examples', `${example}.json`), 'utf8'));
        await lab.red.deploy(flow);
      } else {
        // Deployed by startWholeLab; other examples replaced it: put it back with its credentials.
        await lab.red.deploy(JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'examples', `${example}.json`), 'utf8')));
      }
      await openEditor();
      await page.waitForTimeout(2000); // statuses the nodes report at start
      await showOnly(null);
      const real = await boxes();
      assert.ok(real.some((b) => b.kind === 'node'), `${example}: no nodes shown`);
      await page.screenshot({ path: path.join(SHOTS, `${example}.png`), fullPage: true });
      const width = await visibleWidth();
      assert.ok(width > 1200, `the workspace of a ${WINDOW_WIDTH}-px window is ${width} px`);
      const realProblems = layoutProblems(real, width);
      await roomStatuses();
      const room = await boxes();
      await page.screenshot({ path: path.join(SHOTS, `${example}-room.png`), fullPage: true });
      assert.deepEqual({ real: realProblems, room: layoutProblems(room, width) }, { real: [], room: [] }, example);
    });
  }

  test('the editor page had no errors', () => {
    assert.deepEqual(pageErrors, []);
  });
});
