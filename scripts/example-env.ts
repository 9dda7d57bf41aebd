/**
 * The environment the examples' results loop reads (example 01, and the whole-lab example's top
 * row), pointed at the lab simulator's seeded run: one place for the tests, benches and harnesses
 * that start a real `node-red` with those examples.
 */
import { SEED } from '../simulator';

export function resultsLoopEnv(benchlingUrl: string, folders: { instrument: string; archive: string }): Record<string, string> {
  return {
    BENCHLING_URL: benchlingUrl,
    BENCHLING_RUN_ID: SEED.runs[0].id,
    BENCHLING_OUTPUT_CONFIG: SEED.outputConfigName,
    LAB_INSTRUMENT_FOLDER: folders.instrument,
    LAB_ARCHIVE_FOLDER: folders.archive,
    // The simulator is local: a proxy set on the machine must not be asked for it.
    NO_PROXY: '127.0.0.1,localhost',
  };
}
