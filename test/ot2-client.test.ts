/**
 * The OT-2 client and runner without Node-RED, against both simulated robot generations:
 * generation detection, the whole upload → run → cleanup flow, and the rules each API enforces.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { OpentronsSim } from '../simulator/opentrons';
import { OpentronsClient, robotBaseUrl } from '../nodes/clients/opentrons/client';
import { ProtocolRunner } from '../nodes/clients/opentrons/runner';
import { tempDir } from './support/nodered';

const PROTOCOL = "metadata = {'protocolName': 'sim test', 'apiLevel': '2.13'}\n# sim-steps: 4\ndef run(protocol):\n    protocol.comment('hi')\n";

function clientFor(sim: OpentronsSim, generation: 'auto' | 'runs' | 'sessions' = 'auto') {
  return new OpentronsClient({ host: sim.url, generation, backoff: { baseMs: 20, maxMs: 100 } });
}

describe('OT-2 client', () => {
  let runs: OpentronsSim;
  let sessions: OpentronsSim;
  let dir: string;
  before(async () => {
    runs = await new OpentronsSim({ generation: 'runs', stepMs: 20, analysisMs: 30 }).start();
    sessions = await new OpentronsSim({ generation: 'sessions', stepMs: 20, loadMs: 30 }).start();
    dir = tempDir('ot2-client');
  });
  after(async () => {
    await runs.close();
    await sessions.close();
  });

  test('robot address: host + port, URL, bad input', () => {
    assert.equal(robotBaseUrl('ot2.local'), 'http://ot2.local:31950');
    assert.equal(robotBaseUrl('10.0.0.5', 8080), 'http://10.0.0.5:8080');
    assert.equal(robotBaseUrl('http://10.0.0.5:1234'), 'http://10.0.0.5:1234');
    assert.throws(() => robotBaseUrl(''), /host is missing/);
    assert.throws(() => robotBaseUrl('a b'), /not a host name/);
  });

  test('auto generation: api_version 8.1.0 → runs, 4.7.0 → sessions; every request carries Opentrons-Version', async () => {
    assert.equal(await clientFor(runs).generation(), 'runs');
    assert.equal(await clientFor(sessions).generation(), 'sessions');
    // the simulator answers 422 without the header, so a 200 proves it was sent
    const h = await clientFor(runs).health();
    assert.equal(h.robot_model, 'OT-2 Standard');
  });

  test('auto generation: an emulator reporting api_version 0.0.0-dev but with robot_model is a runs robot; fixed settings skip /health', async () => {
    const dev = await new OpentronsSim({ generation: 'runs', apiVersion: '0.0.0-dev' }).start();
    try {
      assert.equal(await clientFor(dev).generation(), 'runs');
      const before = dev.requestLog.length;
      assert.equal(await clientFor(dev, 'sessions').generation(), 'sessions');
      assert.equal(dev.requestLog.length, before, 'no request when the generation is fixed');
    } finally {
      await dev.close();
    }
  });

  for (const gen of ['runs', 'sessions'] as const) {
    test(`${gen}: a whole run, cleaned up afterwards`, async () => {
      const sim = gen === 'runs' ? runs : sessions;
      const file = path.join(dir, `proto_${gen}.py`);
      fs.writeFileSync(file, PROTOCOL);
      const phases: string[] = [];
      const r = new ProtocolRunner(clientFor(sim), { pollIntervalMs: 20, onProgress: (p) => phases.push(p.phase) });
      const out = await r.run({ protocol: { path: file } });
      assert.equal(out.outcome, 'succeeded', JSON.stringify(out));
      assert.equal(out.state, gen === 'runs' ? 'succeeded' : 'finished');
      assert.ok(phases.includes('running'), phases.join());
      assert.equal(out.warnings.length, 0, out.warnings.join());
      assert.equal(sim.liveProtocols().length, 0);
      assert.equal(gen === 'runs' ? sim.liveRuns().length : sim.liveSessions().length, 0);
    });
  }
});
