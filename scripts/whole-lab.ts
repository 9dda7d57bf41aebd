/**
 * The whole lab loop, started the way `npm start` starts it: the lab simulator (Benchling, an OT-2,
 * Genie LabOS, bioAF), a real Node-RED with this pack, and the "whole lab loop" example deployed
 * with the simulators' (fake) credentials. The end-to-end test starts the same thing.
 */
import * as fs from 'fs';
import * as path from 'path';
import {
  startLabSimulator,
  LabSimulator,
  LabSimulatorOptions,
  SEED,
  DEFAULT_API_KEY,
  DEFAULT_GENIE_TOKEN,
  GENIE_SEED,
  DEFAULT_BIOAF_API_KEY,
} from '../simulator';
import { NodeRedProcess, PROJECT_ROOT, readExample, startNodeRed } from './node-red-process';
import { resultsLoopEnv } from './example-env';

export const WHOLE_LAB_EXAMPLE = '50 - The whole lab loop';
export const BIOAF_EXPERIMENT = 'LAB-EXP-DEMO';

export interface WholeLabOptions {
  dir: string;
  port: number;
  simulator?: LabSimulatorOptions;
  /** Changes to the example's nodes before deploying (tests shorten its timings). */
  adjust?: (node: Record<string, unknown>) => Record<string, unknown>;
  onLog?: (line: string) => void;
}

export interface WholeLab {
  sim: LabSimulator;
  red: NodeRedProcess;
  dirs: { instrument: string; archive: string; robotInputs: string };
  close(): Promise<void>;
}

export async function startWholeLab(o: WholeLabOptions): Promise<WholeLab> {
  const dirs = {
    instrument: path.join(o.dir, 'instrument-output'),
    archive: path.join(o.dir, 'archive'),
    robotInputs: path.join(o.dir, 'robot-inputs'),
  };
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });

  const sim = await startLabSimulator(o.simulator);
  let red: NodeRedProcess;
  try {
    // bioAF needs the experiment the samples belong to (a LIMS would have sent it earlier).
    await seedBioafExperiment(sim.bioaf.apiBase);
    red = await startNodeRed({
      userDir: path.join(o.dir, 'node-red'),
      port: o.port,
      env: {
        ...resultsLoopEnv(sim.benchling.url, { instrument: dirs.instrument, archive: dirs.archive }),
        BENCHLING_INPUT_CONFIG: SEED.inputConfigName,
        LAB_ROBOT_INPUTS: dirs.robotInputs,
        OT2_HOST: sim.ot2.runs.url,
        OT2_PROTOCOL: path.join(PROJECT_ROOT, 'examples', 'files', 'plate-prep.py'),
        GENIE_URL: sim.genie.apiBase,
        GENIE_SHAKER: GENIE_SEED.shaker,
        BIOAF_URL: sim.bioaf.url,
        BIOAF_EXPERIMENT,
      },
      onLog: o.onLog,
    });
  } catch (err) {
    await sim.close();
    throw err;
  }

  // bioAF signs its webhooks to the flow's HTTP In endpoint with this subscription's secret.
  const subscription = sim.bioaf.addSubscription({ url: `${red.url}/bioaf/webhook` });
  // Node-RED encrypts these into flows_cred.json; the example file itself carries no credential.
  const credentials: Record<string, Record<string, string>> = {
    'benchling-tenant': { apiKey: DEFAULT_API_KEY },
    'genie-tenant': { token: DEFAULT_GENIE_TOKEN },
    'bioaf-host': { apiKey: DEFAULT_BIOAF_API_KEY, webhookSecrets: subscription.secret },
  };
  const flows = readExample(WHOLE_LAB_EXAMPLE).map((n) => {
    const node = o.adjust ? o.adjust(n) : n;
    const creds = credentials[node.type as string];
    return creds ? { ...node, credentials: creds } : node;
  });
  try {
    await red.deploy(flows);
  } catch (err) {
    await red.stop();
    await sim.close();
    throw err;
  }
  return {
    sim,
    red,
    dirs,
    async close() {
      await red.stop();
      await sim.close();
    },
  };
}

/** Creates the demo's bioAF project and experiment. */
async function seedBioafExperiment(apiBase: string): Promise<void> {
  const post = (p: string, body: unknown) =>
    fetch(`${apiBase}${p}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEFAULT_BIOAF_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const project = await post('/projects', { external_id: 'LAB-PRJ-DEMO', name: 'Demo project' });
  const { id } = (await project.json()) as { id: number };
  await post('/experiments', { external_id: BIOAF_EXPERIMENT, name: 'Demo experiment', project_id: id });
}
