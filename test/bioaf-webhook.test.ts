/**
 * bioAF webhooks end to end: the simulator's real, signed deliveries go over HTTP to a real
 * Node-RED runtime (core HTTP In with "skip body parsing" → bioaf-webhook-verify → HTTP Response
 * on both outputs). Accepted, and every kind of bad delivery rejected with the right status;
 * repeats dropped (also after a restart); nothing verified twice. Plus the simulator's retry
 * schedule and signature format on their own.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BioafSim, DEFAULT_BIOAF_API_KEY, BIOAF_BACKOFF_SECONDS, type BioafDelivery } from '../simulator/bioaf';
import { BioafClient } from '../nodes/clients/bioaf/client';
import { computeSignature, parseSecrets, parseSignatureHeader, SeenStore, verifySignature } from '../nodes/clients/bioaf/webhook';
import { helper, nodeModule, tempDir, unload, delay } from './support/nodered';

const HOOK = '/bioaf-hook';

let nodeApp: ((req: unknown, res: unknown, next: () => void) => void) | undefined;
/** Captures the runtime's httpNode app of each load, so the test server can route to it. */
function captureHttpNode(RED: { httpNode: typeof nodeApp }) {
  nodeApp = RED.httpNode;
}

interface Loaded {
  verified: any[];
  rejected: any[];
  caught: any[];
}

function flow(o: { maxBytes?: number; skipBodyParsing?: boolean } = {}) {
  return [
    { id: 'tab', type: 'tab', label: 'webhooks' },
    { id: 'host', type: 'bioaf-host', z: 'tab', url: 'http://127.0.0.1:9', timeout: 5 },
    { id: 'in', type: 'http in', z: 'tab', url: HOOK, method: 'post', skipBodyParsing: o.skipBodyParsing ?? true, wires: [['verify']] },
    { id: 'verify', type: 'bioaf-webhook-verify', z: 'tab', host: 'host', tolerance: 300, maxBytes: o.maxBytes ?? 4096, wires: [['okResp', 'verified'], ['rejResp', 'rejected']] },
    { id: 'okResp', type: 'http response', z: 'tab', statusCode: '' },
    { id: 'rejResp', type: 'http response', z: 'tab', statusCode: '' },
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'verified', type: 'helper', z: 'tab' },
    { id: 'rejected', type: 'helper', z: 'tab' },
    { id: 'caught', type: 'helper', z: 'tab' },
  ];
}

async function load(secrets: string, userDir: string, o: { maxBytes?: number; skipBodyParsing?: boolean } = {}): Promise<Loaded> {
  helper.settings({ userDir });
  await new Promise<void>((resolve, reject) => {
    try {
      helper.load(
        [captureHttpNode, nodeModule('http in'), nodeModule('catch'), nodeModule('bioaf-host'), nodeModule('bioaf-webhook-verify')],
        flow(o),
        { host: { apiKey: DEFAULT_BIOAF_API_KEY, webhookSecrets: secrets } },
        () => resolve(),
      );
    } catch (err) {
      reject(err);
    }
  });
  const got: Loaded = { verified: [], rejected: [], caught: [] };
  helper.getNode('verified').on('input', (m: unknown) => got.verified.push(m));
  helper.getNode('rejected').on('input', (m: unknown) => got.rejected.push(m));
  helper.getNode('caught').on('input', (m: unknown) => got.caught.push(m));
  return got;
}

const lastStatus = (d: BioafDelivery) => d.attempts[d.attempts.length - 1]?.status;

describe('bioAF webhooks → Node-RED (HTTP In → verify → HTTP Response)', () => {
  let sim: BioafSim;
  let url: string;

  before(async () => {
    // Real retry schedule (60 s first): failed deliveries are not retried while a test runs.
    sim = await new BioafSim({ retryScale: 1, deliveryTimeoutMs: 3000 }).start();
    await helper.startServer();
    (helper as any)._app.use((req: unknown, res: unknown, next: () => void) => (nodeApp ? nodeApp(req, res, next) : next()));
    url = helper.url() + HOOK;
  });
  afterEach(async () => {
    for (const s of sim.subscriptions()) s.active = false;
    await unload();
  });
  after(async () => {
    await helper.stopServer();
    await sim.close();
  });

  /** One event to a fresh subscription; resolves with its settled delivery. */
  async function deliver(subOpts: Parameters<BioafSim['addSubscription']>[0], data: Record<string, unknown> = { sender: 'bioaf-admin', purpose: 'subscription_test' }) {
    const sub = sim.addSubscription(subOpts);
    const { deliveries, eventId } = sim.emitEvent('webhook.test', data);
    assert.equal(deliveries.length, 1);
    const d = await sim.waitForDelivery(deliveries[0], (x) => x.attempts.length > 0);
    sub.active = false;
    return { d, eventId, sub };
  }

  test('a real delivery from a bioAF write is verified; the HTTP answer is 200', async () => {
    const sub = sim.addSubscription({ url, events: ['experiment.created'] });
    const got = await load(sub.secret, tempDir('wh-ok'));
    const client = new BioafClient({ url: sim.url, apiKey: DEFAULT_BIOAF_API_KEY });
    const r = await client.upsert('experiment', 'E-hook-1', { name: 'hooked' });
    client.close();
    const row = sim.deliveries().find((x) => x.subscriptionId === sub.id)!;
    const d = await sim.waitForDelivery(row.id);
    assert.equal(d.state, 'delivered');
    assert.equal(lastStatus(d), 200);
    assert.equal(got.verified.length, 1);
    const m = got.verified[0];
    assert.equal(m.payload.event, 'experiment.created');
    assert.equal(m.payload.data.experiment_id, r.record.id);
    assert.equal(m.payload.data.external_id, 'E-hook-1');
    assert.match(m.payload.id, /^evt_[0-9a-f]{24}$/);
    assert.equal(m.deliveryId, String(d.id));
    assert.equal(m.eventId, m.payload.id);
    assert.equal(m.event, 'experiment.created');
    assert.equal(got.rejected.length, 0);
    // The body bytes are Python's json.dumps, which JSON.stringify does not reproduce.
    assert.notEqual(JSON.stringify(JSON.parse(d.body.toString())), d.body.toString());
  });

  test('bad deliveries are rejected with the right status; nothing verified', async () => {
    const secret = 'whsec_test-receiver-secret-not-real-000000000000';
    const got = await load(secret, tempDir('wh-bad'));
    const cases: Array<{ name: string; sub: Parameters<BioafSim['addSubscription']>[0]; data?: Record<string, unknown>; status: number; reason: string }> = [
      {
        name: 'tampered body',
        sub: { url, secret, tamper: (o) => ({ headers: o.headers, body: Buffer.from(o.body.toString().replace('subscription_test', 'subscription_t3st')) }) },
        status: 401,
        reason: 'signature_mismatch',
      },
      { name: 'wrong secret', sub: { url, secret: 'whsec_someone-elses-secret-0000000000000000000' }, status: 401, reason: 'signature_mismatch' },
      { name: 'stale timestamp', sub: { url, secret, clockSkewSec: -301 }, status: 401, reason: 'timestamp_out_of_tolerance' },
      { name: 'future timestamp', sub: { url, secret, clockSkewSec: 400 }, status: 401, reason: 'timestamp_out_of_tolerance' },
      {
        name: 'missing header',
        sub: { url, secret, tamper: (o) => void delete o.headers['X-bioAF-Signature'] },
        status: 400,
        reason: 'missing_signature',
      },
      {
        name: 'malformed header',
        sub: { url, secret, tamper: (o) => void (o.headers['X-bioAF-Signature'] = o.headers['X-bioAF-Signature'].replace(/v1=[0-9a-f]+/, 'v1=zz')) },
        status: 400,
        reason: 'malformed_signature',
      },
      { name: 'oversize body', sub: { url, secret }, data: { blob: 'x'.repeat(5000) }, status: 413, reason: 'body_too_large' },
    ];
    for (const c of cases) {
      const { d } = await deliver(c.sub, c.data);
      assert.equal(lastStatus(d), c.status, `${c.name}: HTTP ${lastStatus(d)}`);
      assert.equal(d.state, 'pending', `${c.name}: bioAF will retry a non-2xx`);
      const m = got.rejected.find((x) => x.req.headers['x-bioaf-delivery'] === String(d.id));
      assert.ok(m, `${c.name}: on the rejected output`);
      assert.equal(m.reason, c.reason, c.name);
      assert.equal(m.statusCode, c.status, c.name);
      assert.doesNotMatch(JSON.stringify(d.attempts[0].responseBody), /whsec_/, 'no secret in the answer');
    }
    // A correctly signed one still passes (the node is not stuck).
    const ok = await deliver({ url, secret });
    assert.equal(lastStatus(ok.d), 200);
    assert.equal(got.verified.length, 1);
    assert.equal(got.rejected.length, cases.length);
    const statuses = helper.getNode('verify').status.args.map((a: any[]) => a[0].text).join(' | ');
    assert.match(statuses, /rejected: signature_mismatch/);
    assert.doesNotMatch(statuses, /whsec_/);
  });

  test('secret rotation is a hard cut-over: old secret only → 401; new + old listed → 200', async () => {
    const sub = sim.addSubscription({ url });
    const oldSecret = sub.secret;
    const newSecret = sim.rotateSecret(sub.id);
    sub.active = false;
    let got = await load(oldSecret, tempDir('wh-rot1'));
    const before = await deliver({ url, secret: newSecret });
    assert.equal(lastStatus(before.d), 401);
    assert.equal(got.verified.length, 0);
    await unload();
    got = await load(`${newSecret}, ${oldSecret}`, tempDir('wh-rot2'));
    const withNew = await deliver({ url, secret: newSecret });
    const withOld = await deliver({ url, secret: oldSecret });
    assert.equal(lastStatus(withNew.d), 200);
    assert.equal(lastStatus(withOld.d), 200, 'deliveries still signed with the old secret pass during the cut-over');
    assert.equal(got.verified.length, 2);
  });

  test('repeats are dropped (same delivery retried, admin replay, after a restart) and answered 200', async () => {
    const secret = 'whsec_replay-receiver-secret-not-real-0000000000';
    const userDir = tempDir('wh-dupe');
    let got = await load(secret, userDir);
    const sub = sim.addSubscription({ url, secret });
    const { deliveries, eventId } = sim.emitEvent('sample.updated', { sample_id: 7, external_id: 'S-7', changed_fields: ['organism'] });
    const first = await sim.waitForDelivery(deliveries[0]);
    assert.equal(lastStatus(first), 200);
    // The same delivery row again (its answer was lost): same delivery id, fresh signature.
    const again = await sim.redeliver(first.id);
    assert.equal(again.status, 200, 'a repeat is acknowledged so bioAF stops retrying');
    assert.notEqual(again.signature, undefined);
    // An admin replay: a new delivery id, the same event id.
    const replayId = sim.replayDelivery(first.id);
    const replay = await sim.waitForDelivery(replayId);
    assert.equal(lastStatus(replay), 200);
    assert.equal(got.verified.length, 1);
    assert.deepEqual(got.rejected.map((m) => [m.reason, m.statusCode, m.eventId]), [
      ['duplicate', 200, eventId],
      ['duplicate', 200, eventId],
    ]);
    // Restart (redeploy / crash): the memory is on disk.
    await unload();
    got = await load(secret, userDir);
    const afterRestart = await sim.redeliver(first.id);
    assert.equal(afterRestart.status, 200);
    assert.equal(got.verified.length, 0, 'not verified again after a restart');
    assert.equal(got.rejected[0]?.reason, 'duplicate');
    // A second subscription receiving the same event is the same event (dedupe on body id).
    sub.active = false;
  });

  test('nothing is verified twice when many deliveries (and repeats) arrive at once', async () => {
    const secret = 'whsec_burst-receiver-secret-not-real-00000000000';
    const got = await load(secret, tempDir('wh-burst'));
    const sub = sim.addSubscription({ url, secret });
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) ids.push(...sim.emitEvent('sample.created', { sample_id: i, external_id: `B-${i}`, experiment_id: 1 }).deliveries);
    const settled = await Promise.all(ids.map((id) => sim.waitForDelivery(id)));
    await Promise.all(settled.slice(0, 10).map((d) => sim.redeliver(d.id)));
    await Promise.all(settled.slice(0, 5).map((d) => sim.waitForDelivery(sim.replayDelivery(d.id))));
    sub.active = false;
    const eventIds = got.verified.map((m) => m.payload.id);
    assert.equal(got.verified.length, 20);
    assert.equal(new Set(eventIds).size, 20, 'each event verified exactly once');
    assert.equal(got.rejected.filter((m) => m.reason === 'duplicate').length, 15);
  });

  test('a body parsed by HTTP In is a clear, Catch-able error telling to skip body parsing', async () => {
    const secret = 'whsec_parsed-receiver-secret-not-real-000000000';
    const got = await load(secret, tempDir('wh-parsed'), { skipBodyParsing: false });
    const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-bioAF-Signature': 't=1,v1=' + 'a'.repeat(64) }, body: '{"id": "evt_x"}' });
    assert.equal(res.status, 500, 'the request is still answered');
    await delay(50);
    assert.equal(got.caught.length, 1);
    assert.match(got.caught[0].error.message, /Skip body parsing/);
    assert.equal(got.verified.length, 0);
  });
});

describe('bioAF simulator: webhook delivery and signatures', () => {
  test('at least once with the retry schedule (scaled), same delivery id, re-signed each attempt, dead after 5', async () => {
    const scale = 0.0002; // 60 s → 12 ms, 300 s → 60 ms, 1800 s → 360 ms, 7200 s → 1440 ms
    const sim = await new BioafSim({ retryScale: scale }).start();
    const seen: Array<{ at: number; delivery: string; signature: string }> = [];
    let fail = 3;
    const server = http.createServer((req, res) => {
      seen.push({ at: Date.now(), delivery: String(req.headers['x-bioaf-delivery']), signature: String(req.headers['x-bioaf-signature']) });
      req.resume();
      res.statusCode = fail-- > 0 ? 503 : 204;
      res.end('busy');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const target = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const sub = sim.addSubscription({ url: target });
      const { deliveries } = sim.emitEvent('file.ready', { file_id: 3 });
      const d = await sim.waitForDelivery(deliveries[0]);
      assert.equal(d.state, 'delivered');
      assert.deepEqual(d.attempts.map((a) => a.status), [503, 503, 503, 204]);
      assert.equal(new Set(seen.map((s) => s.delivery)).size, 1, 'one delivery id across retries');
      for (let i = 1; i < 4; i++) {
        const gap = d.attempts[i].at - d.attempts[i - 1].at;
        assert.ok(gap >= BIOAF_BACKOFF_SECONDS[i - 1] * 1000 * scale - 2, `gap ${i}: ${gap} ms`);
      }
      for (const s of seen) {
        const p = parseSignatureHeader(s.signature)!;
        assert.ok(verifySignature(d.body, s.signature, { secrets: [sub.secret] }).ok);
        assert.match(s.signature, /^t=\d+,v1=[0-9a-f]{64}$/);
        assert.equal(p.v1[0], computeSignature(sub.secret, p.t, d.body));
      }
      // Never succeeding: five attempts, then dead-lettered (the 12 h step is never used).
      fail = 100;
      const dead = await sim.waitForDelivery(sim.emitEvent('file.ready', { file_id: 4 }).deliveries[0], undefined, 5000);
      assert.equal(dead.state, 'dead');
      assert.equal(dead.attempts.length, 5);
      // Nobody listening counts as a failure too.
      const gone = sim.addSubscription({ url: 'http://127.0.0.1:9/nothing-here' });
      sub.active = false;
      const refused = await sim.waitForDelivery(sim.emitEvent('file.ready', { file_id: 5 }).deliveries[0], (x) => x.attempts.length > 0);
      assert.equal(refused.attempts[0].status, 0);
      assert.equal(refused.state, 'pending');
      gone.active = false;
    } finally {
      server.close();
      await sim.close();
    }
  });

  test('verifySignature: tolerance both ways, any listed secret, constant-time over every candidate', () => {
    const body = Buffer.from('{"a": 1}');
    const t = 1_800_000_000;
    const h = `t=${t},v1=${computeSignature('whsec_a', t, body)}`;
    assert.ok(verifySignature(body, h, { secrets: ['whsec_b', 'whsec_a'], now: t + 300 }).ok);
    assert.equal((verifySignature(body, h, { secrets: ['whsec_a'], now: t + 301 }) as any).reason, 'timestamp_out_of_tolerance');
    assert.equal((verifySignature(body, h, { secrets: ['whsec_a'], now: t - 301 }) as any).reason, 'timestamp_out_of_tolerance');
    assert.equal((verifySignature(body, h, { secrets: ['whsec_b'], now: t }) as any).status, 401);
    assert.ok(verifySignature(body, `v1=${'0'.repeat(64)},t=${t},v1=${computeSignature('whsec_a', t, body)}`, { secrets: ['whsec_a'], now: t }).ok);
    assert.equal((verifySignature(body, 't=abc,v1=00', { secrets: ['whsec_a'] }) as any).reason, 'malformed_signature');
    assert.equal((verifySignature(body, undefined, { secrets: ['whsec_a'] }) as any).status, 400);
  });

  test('secrets: a list (comma, space or new line), each or all from ${ENV}', () => {
    process.env.LABWIRE_TEST_WHSEC = 'whsec_fromenv-1';
    try {
      assert.deepEqual(parseSecrets(' whsec_new-A_1,whsec_old\n${LABWIRE_TEST_WHSEC} '), ['whsec_new-A_1', 'whsec_old', 'whsec_fromenv-1']);
      assert.deepEqual(parseSecrets('${LABWIRE_TEST_WHSEC}'), ['whsec_fromenv-1']);
      assert.deepEqual(parseSecrets(undefined), []);
    } finally {
      delete process.env.LABWIRE_TEST_WHSEC;
    }
  });

  test('the seen-ids store expires entries and survives reopening', () => {
    const file = `${tempDir('seen')}/seen.jsonl`;
    const s = new SeenStore(file, 1000);
    s.add('e:1', 0);
    s.add('e:2', Date.now());
    s.close();
    const again = new SeenStore(file, 1000);
    assert.equal(again.has('e:2'), true);
    assert.equal(again.has('e:1'), false, 'expired on open');
    assert.equal(again.size, 1);
    again.close();
  });
});
