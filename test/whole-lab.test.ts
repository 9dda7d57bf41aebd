/**
 * The whole lab loop as `npm start` runs it — a real node-red process, the example as shipped,
 * every simulated service — with only its timings shortened: an instrument CSV ends as a processed
 * Benchling file, a bioAF sample and a verified webhook; "prepare a plate" ends with an OT-2 run
 * and a Genie shake.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { freePort } from '../scripts/node-red-process';
import { startWholeLab, WholeLab, BIOAF_EXPERIMENT } from '../scripts/whole-lab';
import { tempDir, delay } from './support/nodered';

async function until(what: string, check: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await delay(100);
  }
}

describe('the whole lab loop, out of the box', () => {
  let lab: WholeLab;
  const log: string[] = [];

  before(async () => {
    lab = await startWholeLab({
      dir: tempDir('whole-lab'),
      port: await freePort(),
      simulator: {
        benchling: { rateLimit: false, taskDurationMs: 150 },
        genie: { commandDurationMs: 50, timeScaleMs: 5 },
      },
      adjust: (n) => {
        if (n.type === 'lab-watch-folder') return { ...n, stability: 0.4 };
        if (n.type === 'benchling-poll-task' || n.type === 'benchling-generate-input') return { ...n, interval: 0.1 };
        if (n.type === 'genie-command' || n.type === 'ot2-run') return { ...n, interval: 0.1 };
        return n;
      },
      onLog: (l) => log.push(l),
    });
  });
  after(async () => {
    await lab?.close();
    if (process.env.LABWIRE_E2E_LOG) console.log(log.join('\n'));
  });

  test('instrument CSV → Benchling processor → bioAF sample → signed webhook back in the flow', async () => {
    fs.writeFileSync(path.join(lab.dirs.instrument, 'plate-77.csv'), 'well,od\nA1,0.3\nA2,0.4\n');
    await until('the file archived', () => fs.existsSync(path.join(lab.dirs.archive, 'plate-77.csv')));
    const processors = lab.sim.benchling.listProcessors().filter((p) => (p.file as { name: string }).name === 'plate-77.csv');
    assert.equal(processors.length, 1);
    assert.equal(processors[0].status, 'SUCCEEDED');
    const sample = lab.sim.bioaf.records('sample').find((s) => s.external_id === 'plate-77');
    assert.ok(sample, 'the sample was upserted in bioAF');
    const experiment = lab.sim.bioaf.records('experiment').find((e) => e.external_id === BIOAF_EXPERIMENT)!;
    assert.equal(sample.experiment_id, experiment.id);
    await until('the sample.created webhook delivered and accepted', () =>
      lab.sim.bioaf.deliveries().some((d) => d.event === 'sample.created' && d.state === 'delivered'),
    );
  });

  test('"prepare a plate": Benchling input CSV → OT-2 run with it → Genie shake', async () => {
    const runsBefore = lab.sim.ot2.runs.allRuns.length;
    const shakesBefore = lab.sim.genie.listCommands().length;
    const res = await fetch(`${lab.red.url}/inject/abcd000000000014`, { method: 'POST' });
    assert.equal(res.status, 200);
    await until('the shake command', () => lab.sim.genie.listCommands().length > shakesBefore, 60_000);
    const run = lab.sim.ot2.runs.allRuns[runsBefore];
    assert.ok(run, 'the OT-2 ran');
    assert.equal(run.status, 'succeeded');
    const upload = lab.sim.ot2.runs.uploads.at(-1)!;
    const names = upload.files.map((f) => f.name);
    assert.ok(names.includes('plate-prep.py'), `the protocol was uploaded (${names})`);
    // The generated plate map is the protocol's CSV runtime parameter (POST /dataFiles), not a bundled file.
    const fileId = run.runTimeParameterFiles?.plate_map;
    assert.ok(fileId, 'the run names the data file for plate_map');
    assert.ok(lab.sim.ot2.runs.dataFilesEver.find((f) => f.id === fileId)?.name.endsWith('.csv'), 'the generated input CSV is the data file');
  });
});
