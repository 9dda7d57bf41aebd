/**
 * End to end: a real `node-red` process with this pack installed runs the
 * "Instrument CSV → Benchling run" example against the simulator. Files dropped into the folder
 * each get exactly one processor; a SIGKILL of Node-RED in the middle loses nothing and
 * duplicates nothing after the restart.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, LabSimulator, SEED, DEFAULT_API_KEY } from '../simulator';
import { freePort, readExample, startNodeRed, NodeRedProcess } from '../scripts/node-red-process';
import { tempDir, delay } from './support/nodered';
import { BASE_OVERRIDES, EXAMPLE_01, exampleFlow as chaosExampleFlow, mergeOverrides } from '../scripts/chaos-lib';
import { resultsLoopEnv } from '../scripts/example-env';

async function until(what: string, check: () => boolean, ms = 60_000, attempt?: () => Promise<void>): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    await attempt?.();
    if (check()) return;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await delay(100);
  }
}

describe('end to end: the example flow in a real Node-RED process', () => {
  let sim: LabSimulator;
  let red: NodeRedProcess | undefined;
  const root = tempDir('e2e');
  const instrument = path.join(root, 'instrument');
  const archive = path.join(root, 'archive');
  const userDir = path.join(root, 'node-red');
  const robotInputs = path.join(root, 'robot-inputs');
  const outcomeLog = path.join(root, 'outcome.log');
  const log: string[] = [];

  async function startRed(): Promise<NodeRedProcess> {
    const r = await startNodeRed({
      userDir,
      port: await freePort(),
      env: {
        ...resultsLoopEnv(sim.benchling.url, { instrument: instrument, archive: archive }),
        BENCHLING_SCHEMA_ID: SEED.schemaId,
        BENCHLING_INPUT_CONFIG: SEED.inputConfigName,
        LAB_ROBOT_INPUTS: robotInputs,
        LAB_OUTCOME_LOG: outcomeLog,
      },
      onLog: (l) => log.push(l),
    });
    red = r;
    return r;
  }

  /** The example as a user imports it, with short timings and the simulator's key. */
  function exampleFlow(name = EXAMPLE_01) {
    return chaosExampleFlow(mergeOverrides(BASE_OVERRIDES, { 'benchling-tenant': { rateLimit: 600 } }), DEFAULT_API_KEY, name);
  }

  const processorsByFile = () => {
    const counts = new Map<string, number>();
    for (const p of sim.benchling.listProcessors()) {
      const name = (p.file as { name?: string } | undefined)?.name ?? '?';
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    return counts;
  };

  const write = (name: string) => fs.writeFileSync(path.join(instrument, name), `well,od\nA1,0.1\nB1,0.2\n# ${name}\n`);

  before(async () => {
    fs.mkdirSync(instrument, { recursive: true });
    sim = await startLabSimulator({ benchling: { rateLimit: false, taskDurationMs: 300 } });
  });
  after(async () => {
    await red?.stop();
    await sim?.close();
    if (process.env.LABWIRE_E2E_LOG) console.log(log.join('\n'));
  });

  test('each dropped file gets one processor; successes are archived, the failure stays', async () => {
    const r = await startRed();
    await r.deploy(exampleFlow());
    const ok = ['plate-01.csv', 'plate-02.csv', 'plate-03.csv', 'plate-04.csv'];
    for (const f of [...ok, 'FAIL-plate-05.csv']) write(f);
    await until('archive', () => ok.every((f) => fs.existsSync(path.join(archive, f))), 60_000);
    await until('failed file processed', () => processorsByFile().get('FAIL-plate-05.csv') === 1);
    await delay(1000);
    const counts = processorsByFile();
    for (const f of [...ok, 'FAIL-plate-05.csv']) assert.equal(counts.get(f), 1, `${f}: ${counts.get(f)} processors`);
    assert.ok(fs.existsSync(path.join(instrument, 'FAIL-plate-05.csv')), 'a failed file is not archived');
    assert.equal(fs.readdirSync(instrument).filter((f) => f.startsWith('plate-')).length, 0);
  });

  test('SIGKILL of Node-RED mid-batch: after a restart every file is done exactly once', async () => {
    const batch = Array.from({ length: 12 }, (_, i) => `batch-${String(i).padStart(2, '0')}.csv`);
    for (const f of batch) write(f);
    await until('some progress', () => batch.some((f) => processorsByFile().has(f)), 30_000);
    red!.child.kill('SIGKILL');
    await new Promise((r) => red!.child.once('exit', r));
    red = undefined;
    const doneBeforeCrash = batch.filter((f) => fs.existsSync(path.join(archive, f))).length;
    // Same user directory: flows, credentials and the journals are read back from disk.
    await startRed();
    await until('whole batch archived', () => batch.every((f) => fs.existsSync(path.join(archive, f))), 90_000);
    await delay(1000);
    const counts = processorsByFile();
    for (const f of batch) assert.equal(counts.get(f), 1, `${f}: ${counts.get(f)} processors`);
    const blobs = sim.benchling.listBlobs().filter((b) => batch.includes(b.name));
    // A blob's id is journalled before its bytes are sent, so a kill anywhere in an upload leaves
    // an upload that the re-send finishes: one COMPLETE blob per file. Only a kill (or a lost
    // answer) inside :start-multipart-upload can leave an upload nobody knows, and it holds no data.
    for (const f of batch) assert.equal(blobs.filter((b) => b.name === f && b.uploadStatus === 'COMPLETE').length, 1, `${f}: COMPLETE blobs`);
    for (const b of blobs) assert.ok(b.uploadStatus === 'COMPLETE' || b.parts.length === 0, `blob ${b.id} of ${b.name} holds data but was not completed`);
    assert.ok(doneBeforeCrash < batch.length, 'the kill happened mid-batch');
  });

  test('examples 06 and 07: input files for every run; a folder processed with a JSON-lines outcome log', async () => {
    fs.mkdirSync(robotInputs, { recursive: true });
    await red!.deploy([...exampleFlow('06 - Find runs and generate the input file for each'), ...exampleFlow('07 - Process a folder of files into a run and log the outcome').filter((n) => n.type !== 'benchling-tenant')]);
    const inputFiles = () => fs.readdirSync(robotInputs, { recursive: true }).map(String).filter((f) => f.endsWith('.csv'));
    await until('an input file per seeded run', () => inputFiles().length >= SEED.runs.length, 30_000);
    assert.deepEqual(new Set(inputFiles().map((f) => path.dirname(f))), new Set(SEED.runs.map((r) => r.id)), 'one folder per run');
    write('logged-ok.csv');
    write('FAIL-logged.csv');
    const outcomes = () => (fs.existsSync(outcomeLog) ? fs.readFileSync(outcomeLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : []);
    await until('an outcome line for each file', () => ['logged-ok.csv', 'FAIL-logged.csv'].every((f) => outcomes().some((l) => l.file === f)), 30_000);
    const byFile = Object.fromEntries(outcomes().map((l) => [l.file, l]));
    assert.equal(byFile['logged-ok.csv'].status, 'SUCCEEDED');
    assert.equal(byFile['FAIL-logged.csv'].status, 'FAILED');
    await until('success archived', () => fs.existsSync(path.join(archive, 'logged-ok.csv')));
  });

  test('example 08: benchling request reads the run and writes a field on it', async () => {
    await red!.deploy(exampleFlow('08 - Record an outcome on the Benchling run').map((n) => (n.type === 'inject' ? { ...n, once: false } : n)));
    const mark = readExample('08 - Record an outcome on the Benchling run').find((n) => n.name === 'mark the run processed')!;
    // The deploy's answer can come just before the new flow's inject node takes requests.
    let status = 0;
    await until('the inject button answering', () => status === 200, 10_000, async () => {
      status = (await fetch(`${red!.url}/inject/${mark.id}`, { method: 'POST' })).status;
    });
    await until('the field written', () => {
      const run = sim.benchling.getRun(SEED.runs[0].id) as { fields: Record<string, { value: unknown }> };
      return run.fields['Pipeline status']?.value === 'processed by Node-RED';
    });
  });
});
