/**
 * `npm start`: the whole pipeline, offline, with no configuration. Starts the lab simulator and a
 * Node-RED on 127.0.0.1:1880 with this pack and the "Instrument CSV → Benchling run" example,
 * drops a sample instrument CSV into the watched folder, and says where to look.
 */
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, SEED, DEFAULT_API_KEY } from '../simulator';
import { PROJECT_ROOT, readExample, startNodeRed } from './node-red-process';

const EXAMPLE = '01 - Instrument CSV to Benchling run';

function sampleCsv(plate: string): string {
  const rows = ['plate,well,od600'];
  for (const r of 'ABCDEFGH') for (let c = 1; c <= 12; c++) rows.push(`${plate},${r}${c},${(0.05 + Math.random()).toFixed(3)}`);
  return rows.join('\n') + '\n';
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT) || 1880;
  const simPort = Number(process.env.SIM_PORT) || 4010;
  const demoDir = path.resolve(process.env.LABWIRE_DEMO_DIR || path.join(PROJECT_ROOT, '.demo'));
  const instrumentDir = path.join(demoDir, 'instrument-output');
  const archiveDir = path.join(demoDir, 'archive');
  fs.mkdirSync(instrumentDir, { recursive: true });
  fs.mkdirSync(archiveDir, { recursive: true });

  const sim = await startLabSimulator({ benchling: { port: simPort, taskDurationMs: 3000 } }).catch((err) => {
    throw new Error(`could not start the simulator on port ${simPort} (${err.message}); set SIM_PORT to another port`);
  });
  console.log(`Lab simulator (Benchling API) on ${sim.benchling.url}/api/v2`);

  const red = await startNodeRed({
    userDir: path.join(demoDir, 'node-red'),
    port,
    env: {
      BENCHLING_URL: sim.benchling.url,
      BENCHLING_RUN_ID: SEED.runs[0].id,
      BENCHLING_OUTPUT_CONFIG: SEED.outputConfigName,
      LAB_INSTRUMENT_FOLDER: instrumentDir,
      LAB_ARCHIVE_FOLDER: archiveDir,
      NO_PROXY: '127.0.0.1,localhost',
    },
    onLog: (line) => console.log(`  [node-red] ${line}`),
  }).catch(async (err) => {
    await sim.close();
    throw new Error(`${err.message}; set PORT to use another port than ${port}`);
  });

  // Deploy the example with the simulator's (fake) API key as the tenant's credential; Node-RED
  // encrypts it into flows_cred.json. The example file itself carries no credential.
  const flows = readExample(EXAMPLE).map((n) => (n.type === 'benchling-tenant' ? { ...n, credentials: { apiKey: DEFAULT_API_KEY } } : n));
  await red.deploy(flows);

  const sample = path.join(instrumentDir, `plate-${new Date().toISOString().replace(/[:.]/g, '-')}.csv`);
  fs.writeFileSync(sample, sampleCsv('P1'));

  console.log(`
Node-RED with @labwire/node-red-lab-automation is running:

  Editor        ${red.url}   (flow "Instrument CSV → Benchling run", debug sidebar on the right)
  Watched       ${instrumentDir}
  Archive       ${archiveDir}
  Simulator     ${sim.benchling.url}/api/v2  (API key ${DEFAULT_API_KEY}, run ${SEED.runs[0].id})

A sample plate-reader CSV was just written to the watched folder: after 5 s of stability it is
uploaded as a blob, processed into the run, and moved to the archive folder.

Try next:
  - copy any .csv into the watched folder;
  - name a file with FAIL in it (e.g. FAIL-plate.csv) to see the failure path;
  - stop with Ctrl+C and start again: nothing is uploaded twice.
`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log('stopping…');
    await red.stop();
    await sim.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  red.child.on('exit', (code) => {
    if (!stopping) {
      console.error(`Node-RED exited (code ${code})`);
      void sim.close().then(() => process.exit(1));
    }
  });
}

main().catch((err) => {
  console.error(`npm start failed: ${err.message}`);
  process.exit(1);
});
