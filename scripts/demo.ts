/**
 * `npm start`: the whole lab loop, offline, with no configuration. Starts the lab simulator
 * (Benchling, an OT-2, Genie LabOS, bioAF) and a Node-RED on 127.0.0.1:1880 with this pack and the
 * "whole lab loop" example, drops a sample instrument CSV into the watched folder, and says where
 * to look.
 */
import * as fs from 'fs';
import * as path from 'path';
import { SEED, DEFAULT_API_KEY } from '../simulator';
import { PROJECT_ROOT } from './node-red-process';
import { startWholeLab } from './whole-lab';

function sampleCsv(plate: string): string {
  const rows = ['plate,well,od600'];
  for (const r of 'ABCDEFGH') for (let c = 1; c <= 12; c++) rows.push(`${plate},${r}${c},${(0.05 + Math.random()).toFixed(3)}`);
  return rows.join('\n') + '\n';
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT) || 1880;
  const simPort = Number(process.env.SIM_PORT) || 4010;
  const dir = path.resolve(process.env.LABWIRE_DEMO_DIR || path.join(PROJECT_ROOT, '.demo'));
  const lab = await startWholeLab({
    dir,
    port,
    simulator: { benchling: { port: simPort, taskDurationMs: 3000 } },
    onLog: (line) => console.log(`  [node-red] ${line}`),
  }).catch((err) => {
    throw new Error(`${err.message} (ports in use? set PORT for Node-RED, now ${port}, and SIM_PORT for the simulator, now ${simPort})`);
  });
  const { sim, red, dirs } = lab;

  fs.writeFileSync(path.join(dirs.instrument, `plate-${new Date().toISOString().replace(/[:.]/g, '-')}.csv`), sampleCsv('P1'));

  console.log(`
Node-RED with @labwire/node-red-lab-automation is running:

  Editor        ${red.url}   (flow "The whole lab loop", debug sidebar on the right)
  Watched       ${dirs.instrument}
  Archive       ${dirs.archive}
  Robot inputs  ${dirs.robotInputs}
  Simulators    Benchling ${sim.benchling.apiBase} (API key ${DEFAULT_API_KEY}, run ${SEED.runs[0].id})
                OT-2 ${sim.ot2.runs.url} · Genie ${sim.genie.apiBase} · bioAF ${sim.bioaf.apiBase}

A sample plate-reader CSV was just written to the watched folder: after 5 s of stability it is
uploaded as a blob, processed into the run, upserted as a bioAF sample (whose webhook then arrives
back in the flow), and moved to the archive folder.

Try next:
  - copy any .csv into the watched folder;
  - name a file with FAIL in it (e.g. FAIL-plate.csv) to see the failure path;
  - click "prepare a plate": Benchling generates the input CSV, the OT-2 runs the protocol
    with it, and the Genie shaker shakes the plate;
  - stop with Ctrl+C and start again: nothing is uploaded twice.
`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log('stopping…');
    await lab.close();
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
