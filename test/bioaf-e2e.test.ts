/**
 * Example 41 in a real `node-red` process (admin and node routes on the same root, as in a default
 * install — where the editor's JSON body parser would otherwise eat the raw body) receiving the
 * bioAF simulator's signed deliveries: verified → 200, a wrong signature → 401, a repeat → 200
 * without passing it on twice, also after a SIGKILL and restart (the ids are on disk).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import { BioafSim } from '../simulator/bioaf';
import { freePort, readExample, startNodeRed, NodeRedProcess } from '../scripts/node-red-process';
import { tempDir } from './support/nodered';

const SECRET = 'whsec_e2e-test-secret-not-real-0000000000000000000';

describe('end to end: bioAF webhooks into a real Node-RED process (example 41)', () => {
  let sim: BioafSim;
  let red: NodeRedProcess | undefined;
  const userDir = path.join(tempDir('bioaf-e2e'), 'node-red');
  const log: string[] = [];
  let port = 0;

  async function startRed(): Promise<NodeRedProcess> {
    const r = await startNodeRed({ userDir, port, env: { BIOAF_URL: sim.url, NO_PROXY: '127.0.0.1,localhost' }, onLog: (l) => log.push(l) });
    const flow = readExample('41 - Receive and verify bioAF webhooks');
    const host = flow.find((n) => n.type === 'bioaf-host')!;
    host.credentials = { webhookSecrets: SECRET };
    // The debug "rejected"/"sample event" nodes also log to the console, so the test can see them.
    for (const n of flow) if (n.type === 'debug') n.console = true;
    await r.deploy(flow);
    // The deploy can answer before the HTTP In route exists: wait until an unsigned POST gets
    // the verify node's 400 (missing signature) instead of 404.
    const t0 = Date.now();
    for (;;) {
      const res = await fetch(`${r.url}/bioaf/webhook`, { method: 'POST', body: '{}' });
      if (res.status !== 404) {
        assert.equal(res.status, 400, 'an unsigned delivery is answered 400');
        break;
      }
      if (Date.now() - t0 > 20_000) throw new Error('the webhook route did not appear within 20 s');
      await new Promise((res2) => setTimeout(res2, 100));
    }
    return r;
  }

  before(async () => {
    sim = await new BioafSim().start();
    port = await freePort();
    red = await startRed();
  });
  after(async () => {
    await red?.stop('SIGKILL');
    await sim.close();
  });

  test('verified, rejected, repeat dropped — also after kill -9', async () => {
    const url = `http://127.0.0.1:${port}/bioaf/webhook`;
    sim.addSubscription({ url, secret: SECRET });
    const { deliveries } = sim.emitEvent('sample.created', { sample_id: 1, external_id: 'S-e2e', experiment_id: 1 });
    const ok = await sim.waitForDelivery(deliveries[0], undefined, 15_000);
    assert.equal(ok.attempts[0].status, 200, `log:\n${log.slice(-20).join('\n')}`);

    const bad = sim.addSubscription({ url, secret: 'whsec_wrong-one-00000000000000000000000000000' });
    const rejected = await sim.waitForDelivery(sim.emitEvent('sample.created', { sample_id: 2, external_id: 'S-bad', experiment_id: 1 }).deliveries[1], (d) => d.attempts.length > 0, 15_000);
    assert.equal(rejected.subscriptionId, bad.id);
    assert.equal(rejected.attempts[0].status, 401);
    bad.active = false;

    // Killed and restarted: a retry of the verified delivery is still recognised.
    await red!.stop('SIGKILL');
    red = await startRed();
    const again = await sim.redeliver(ok.id);
    assert.equal(again.status, 200);
    assert.match(again.responseBody, /duplicate/);
    const sampleEvents = log.filter((l) => l.includes('sample event') || l.includes('"external_id":"S-e2e"') || l.includes("external_id: 'S-e2e'"));
    assert.ok(sampleEvents.length >= 1, 'the event reached the flow');
    assert.doesNotMatch(log.join('\n'), /whsec_/, 'no secret in the log');
  });
});
