// Lab simulator entry point. Each simulated system is its own module and its own HTTP server on its
// own port; today only Benchling exists. OT-2 (Opentrons robot server), Genie LabOS and bioAF are
// meant to be added as sibling modules (simulator/opentrons.ts, …) with an options key and a
// result property each, started and closed in the same way.
import { BenchlingSim, type BenchlingSimOptions } from './benchling';

export * from './benchling';

export interface LabSimulatorOptions {
  /** Interface every simulator listens on. Default '127.0.0.1'. */
  host?: string;
  /** Benchling API simulator options (port 0 = random). */
  benchling?: Omit<BenchlingSimOptions, 'host'>;
}

export interface LabSimulator {
  benchling: BenchlingSim;
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
    let closing: Promise<void> | undefined;
    return {
      benchling,
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
