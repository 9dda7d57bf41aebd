/**
 * The chaos proof, short version (the full one is `npm run chaos`): example 01 in a real `node-red`
 * against the lab simulator, counted from the simulator's own state.
 *   A. ~20 % faults of every kind (before / after handling, slow, trickle), 30 files + 2 FAIL files:
 *      every file SUCCEEDED and archived once, no duplicate processors, no orphan blobs, FAIL files
 *      dead-lettered with the simulator's reason after exactly one processor.
 *   B. 24 files written every 150 ms, Node-RED SIGKILLed twice and restarted, rate limit 60/30 s on
 *      both sides: every file done once, every blob id in the journals, no 429 after a restart.
 * The two scenarios run side by side (each has its own simulator, folders and Node-RED). No timing
 * assertions: only generous deadlines, so a loaded machine makes it slower, not red.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatResult, runScenarioA, runScenarioB, type ScenarioResult } from '../scripts/chaos-lib';

const seed = Number(process.env.LABWIRE_CHAOS_SEED ?? 4242);

function report(r: ScenarioResult): string {
  return `${formatResult(r)}\n  (seed ${seed}; repeat with LABWIRE_CHAOS_SEED=${seed}; the full run: npm run chaos)`;
}

describe('chaos: example 01 under faults and crashes', { concurrency: true }, () => {
  test('A: 20 % faults of every kind, no restart', { timeout: 180_000 }, async (t) => {
    const r = await runScenarioA({ files: 30, failFiles: 2, faults: 0.2, seed, deadlineMs: 75_000, stallMs: 20_000, quietMs: 3_000 });
    if (r.ok) t.diagnostic(report(r));
    assert.ok(r.ok, report(r));
  });

  test('B: two SIGKILLs of Node-RED mid-batch, rate limit on', { timeout: 330_000 }, async (t) => {
    // At 60 requests / 30 s and ~6.5 requests a file the tenant's limit sets the pace (~2 s a
    // file), and after a restart the governor rightly sits out the rest of the window it spent
    // before the kill, plus the server's own reset: up to two windows without a request. So "no
    // progress" means more than that (70 s), and the deadline leaves room for the pace.
    const r = await runScenarioB({
      files: 24,
      kills: 2,
      writeEveryMs: 150,
      killMinSec: 2,
      killMaxSec: 8,
      seed,
      deadlineMs: 240_000,
      stallMs: 70_000,
      quietMs: 3_000,
    });
    if (r.ok) t.diagnostic(report(r));
    assert.ok(r.ok, report(r));
  });
});
