// Lab simulator entry point. Each simulated system is its own module and its own HTTP server on its
// own port; today only Benchling exists. OT-2 (Opentrons robot server), Genie LabOS and bioAF are
// meant to be added as sibling modules (simulator/opentrons.ts, …) with an options key and a
// result property each, started and closed in the same way.
import { BenchlingSim, type BenchlingSimOptions } from './benchling';
import { GenieSim, type GenieSimOptions } from './genie';
import { BioafSim, type BioafSimOptions } from './bioaf';
import { OpentronsSim, type OpentronsSimOptions } from './opentrons';

export * from './benchling';
export * from './genie';
export * from './bioaf';
export * from './opentrons';

export interface LabSimulatorOptions {
  /** Interface every simulator listens on. Default '127.0.0.1'. */
  host?: string;
  /** Benchling API simulator options (port 0 = random). */
  benchling?: Omit<BenchlingSimOptions, 'host'>;
  /** Genie LabOS Public API simulator options (port 0 = random). */
  genie?: Omit<GenieSimOptions, 'host'>;
  /** bioAF Integration API + webhook sender simulator options (port 0 = random). */
  bioaf?: Omit<BioafSimOptions, 'host'>;
  /** Opentrons OT-2 robot simulators, one per API generation (port 0 = random). */
  ot2?: { runs?: Omit<OpentronsSimOptions, 'host' | 'generation'>; sessions?: Omit<OpentronsSimOptions, 'host' | 'generation'> };
}

export interface LabSimulator {
  benchling: BenchlingSim;
  genie: GenieSim;
  bioaf: BioafSim;
  /** OT-2 robots: `runs` (robot software 8.x, runs API) and `sessions` (4.x, protocol sessions). */
  ot2: { runs: OpentronsSim; sessions: OpentronsSim };
  /** Closes every simulator, destroying open sockets (hung requests included). */
  close(): Promise<void>;
}

/** Something that can be started and closed; every sibling simulator implements this. */
interface SimServer {
  close(): Promise<void>;
}

export async function startLabSimulator(opts: LabSimulatorOptions = {}): Promise<LabSimulator> {
  const host = opts.host ?? '127.0.0.1';
  const started: SimServer[] = [];
  try {
    const benchling = await new BenchlingSim({ ...(opts.benchling ?? {}), host }).start();
    started.push(benchling);
    const genie = await new GenieSim({ ...(opts.genie ?? {}), host }).start();
    started.push(genie);
    const bioaf = await new BioafSim({ ...(opts.bioaf ?? {}), host }).start();
    started.push(bioaf);
    const ot2Runs = await new OpentronsSim({ ...(opts.ot2?.runs ?? {}), host, generation: 'runs' }).start();
    started.push(ot2Runs);
    const ot2Sessions = await new OpentronsSim({ ...(opts.ot2?.sessions ?? {}), host, generation: 'sessions' }).start();
    started.push(ot2Sessions);
    let closing: Promise<void> | undefined;
    return {
      benchling,
      genie,
      bioaf,
      ot2: { runs: ot2Runs, sessions: ot2Sessions },
      close() {
        closing ??= Promise.all(started.map((s) => s.close())).then(() => undefined);
        return closing;
      },
    };
  } catch (err) {
    await Promise.all(started.map((s) => s.close().catch(() => undefined)));
    throw err;
  }
}
