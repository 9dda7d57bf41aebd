/**
 * Canary: no secret ever leaves Node-RED to a place it was not configured for, and none shows up
 * in clear anywhere. A real `node-red` process runs with a canary environment variable and
 * canary-like fake credentials in every config node (Benchling API key and OAuth client secret,
 * Genie token — one of them through `${ENV}` —, bioAF API key and webhook secrets; the OT-2 robot
 * has none). A capture server records every request line, header and body it receives. Every
 * admin route of the pack is hit with hostile input (`${LABWIRE_CANARY}`, `${BENCHLING_API_KEY}` in
 * url / query / header / path, URLs pointing at the capture server, a redirect, a user:password
 * URL), the nodes run success and failure paths against the lab simulator, and then the canary and
 * every credential must be absent from: what the capture server received, the admin responses,
 * GET /flows, every file in the user directory (flows_cred.json included: it is encrypted), the
 * Node-RED log, and every msg, status and error the flow observed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { startLabSimulator, LabSimulator, GENIE_SEED } from '../simulator';
import { freePort, startNodeRed, NodeRedProcess } from '../scripts/node-red-process';
import { tempDir } from './support/nodered';

const CANARY = 'canary-7f3a9c-DO-NOT-LEAK';
const BENCHLING_KEY = 'sk_FAKE_canary_benchling_apikey_7f3a9c';
const BENCHLING_ENV_KEY = 'sk_FAKE_canary_benchling_envkey_7f3a9c';
const OAUTH_ID = 'fake-canary-app-id';
const OAUTH_SECRET = 'cs_FAKE_canary_oauth_secret_7f3a9c';
const GENIE_TOKEN = 'genie_FAKE_canary_token_7f3a9c';
const GENIE_ENV_TOKEN = 'genie_FAKE_canary_envtoken_7f3a9c';
const GENIE_REJECTED = 'genie_FAKE_canary_rejected_7f3a9c';
const BIOAF_KEY = 'biokey_FAKEcanary01.canary7f3a9cnotasecret00000000';
const BIOAF_REJECTED = 'biokey_FAKEcanary02.canary7f3a9crejected000000000';
const WEBHOOK_SECRET = 'whsec_FAKE_canary_webhook_7f3a9c_000000000000';
const WEBHOOK_SECRET_2 = 'whsec_FAKE_canary_webhook2_7f3a9c_00000000000';
/** Everything that must never appear in clear. */
const SECRETS = [CANARY, BENCHLING_KEY, BENCHLING_ENV_KEY, OAUTH_SECRET, GENIE_TOKEN, GENIE_ENV_TOKEN, GENIE_REJECTED, BIOAF_KEY, BIOAF_REJECTED, WEBHOOK_SECRET, WEBHOOK_SECRET_2];
/** What a literal-URL request typed "in the dialog" may send: the caller's own value, not a secret. */
const TYPED_TOKEN = 'typed-in-the-dialog-not-a-secret';

interface Captured {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function findLeaks(where: string, text: string): string[] {
  return SECRETS.filter((s) => text.includes(s)).map((s) => `${s} in ${where}`);
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules') continue; // the pack itself, linked in
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe('canary: no credential or environment secret leaks', () => {
  let sim: LabSimulator;
  let red: NodeRedProcess;
  let capture: http.Server;
  let captureUrl = '';
  const captured: Captured[] = [];
  const log: string[] = [];
  const responses: string[] = [];
  const userDir = path.join(tempDir('canary'), 'node-red');

  /** A GET through the admin API, the path sent as given (not normalised, unlike fetch). */
  async function admin(p: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any; text: string }> {
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const u = new URL(red.url);
      const req = http.get({ host: u.hostname, port: u.port, path: p, headers }, (r) => {
        let t = '';
        r.setEncoding('utf8');
        r.on('data', (c) => (t += c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, text: t }));
      });
      req.on('error', reject);
    });
    const text = res.text;
    responses.push(`${p} -> ${res.status} ${text}`);
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.status, body, text };
  }

  before(async () => {
    sim = await startLabSimulator({
      benchling: { rateLimit: false, apiKeys: [BENCHLING_KEY, BENCHLING_ENV_KEY], oauthClients: [{ clientId: OAUTH_ID, clientSecret: OAUTH_SECRET }] },
      genie: { tokens: [GENIE_TOKEN, GENIE_ENV_TOKEN], commandDurationMs: 50 },
      bioaf: { apiKeys: [BIOAF_KEY] },
    });
    capture = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        captured.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        if (req.url?.includes('redirect')) {
          res.writeHead(302, { location: `${captureUrl}/followed-the-redirect` }).end();
        } else {
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":[]}');
        }
      });
    });
    await new Promise<void>((r) => capture.listen(0, '127.0.0.1', () => r()));
    captureUrl = `http://127.0.0.1:${(capture.address() as { port: number }).port}`;

    red = await startNodeRed({
      userDir,
      port: await freePort(),
      env: {
        LABWIRE_CANARY: CANARY,
        BENCHLING_API_KEY: BENCHLING_ENV_KEY,
        GENIE_CANARY_TOKEN: GENIE_ENV_TOKEN,
        NO_PROXY: '127.0.0.1,localhost',
      },
      onLog: (l) => log.push(l),
    });
    const z = 'tab1';
    const observe = { id: 'obs1', type: 'function', z, name: 'observe msgs', func: "const { req, res, ...rest } = msg; node.warn('OBSERVED ' + JSON.stringify(rest)); return null;", outputs: 1, wires: [[]] };
    const prep = "const b = msg.payload || {}; msg.tag = b.tag; if (b.path !== undefined) msg.path = b.path; if (b.values !== undefined) msg.values = b.values; if (b.externalId !== undefined) msg.externalId = b.externalId; msg.payload = b.payload; return msg;";
    const route = (name: string, target: string) => [
      { id: `in-${name}`, type: 'http in', z, url: `/canary/${name}`, method: 'post', upload: false, wires: [[`ok-${name}`, `prep-${name}`]] },
      { id: `ok-${name}`, type: 'http response', z, statusCode: '202', headers: {}, wires: [] },
      { id: `prep-${name}`, type: 'function', z, func: prep, outputs: 1, wires: [[target]] },
    ];
    await red.deploy([
      { id: z, type: 'tab', label: 'canary' },
      { id: 'bt-key', type: 'benchling-tenant', name: 'key', url: sim.benchling.url, authType: 'apiKey', credentials: { apiKey: BENCHLING_KEY } },
      { id: 'bt-env', type: 'benchling-tenant', name: 'env key', url: sim.benchling.url, authType: 'apiKey', credentials: { apiKey: '${BENCHLING_API_KEY}' } },
      { id: 'bt-oauth', type: 'benchling-tenant', name: 'oauth', url: sim.benchling.url, authType: 'oauth', credentials: { clientId: OAUTH_ID, clientSecret: OAUTH_SECRET } },
      { id: 'gt-ok', type: 'genie-tenant', name: 'genie', url: sim.genie.apiBase, timeout: 10, credentials: { token: GENIE_TOKEN } },
      { id: 'gt-env', type: 'genie-tenant', name: 'genie env', url: sim.genie.apiBase, timeout: 10, credentials: { token: '${GENIE_CANARY_TOKEN}' } },
      { id: 'gt-bad', type: 'genie-tenant', name: 'genie rejected', url: sim.genie.apiBase, timeout: 10, credentials: { token: GENIE_REJECTED } },
      { id: 'bh-ok', type: 'bioaf-host', name: 'bioAF', url: sim.bioaf.url, timeout: 10, credentials: { apiKey: BIOAF_KEY, webhookSecrets: `${WEBHOOK_SECRET}, ${WEBHOOK_SECRET_2}` } },
      { id: 'bh-bad', type: 'bioaf-host', name: 'bioAF rejected', url: sim.bioaf.url, timeout: 10, credentials: { apiKey: BIOAF_REJECTED } },
      { id: 'ot2', type: 'ot2-robot', name: 'robot', url: sim.ot2.runs.url },
      observe,
      { id: 'catch1', type: 'catch', z, name: 'errors', scope: null, uncaught: false, wires: [['obs1']] },
      { id: 'status1', type: 'status', z, name: 'statuses', scope: null, wires: [['obs1']] },
      ...route('bench', 'br-key'),
      { id: 'br-key', type: 'benchling-request', z, tenant: 'bt-key', method: 'GET', path: 'path', pathType: 'msg', wires: [['obs1']] },
      ...route('bench-env', 'br-env'),
      { id: 'br-env', type: 'benchling-request', z, tenant: 'bt-env', method: 'GET', path: 'path', pathType: 'msg', wires: [['obs1']] },
      ...route('bench-oauth', 'br-oauth'),
      { id: 'br-oauth', type: 'benchling-request', z, tenant: 'bt-oauth', method: 'GET', path: 'path', pathType: 'msg', wires: [['obs1']] },
      ...route('genie', 'gc-ok'),
      { id: 'gc-ok', type: 'genie-command', z, tenant: 'gt-ok', instrument: GENIE_SEED.reader, instrumentType: 'str', action: 'Read Plate', actionType: 'str', params: {}, interval: 0.05, maxInterval: 0.2, timeout: 20, wires: [['obs1'], ['obs1']] },
      ...route('genie-env', 'gc-env'),
      { id: 'gc-env', type: 'genie-command', z, tenant: 'gt-env', instrument: GENIE_SEED.reader, instrumentType: 'str', action: 'Read Plate', actionType: 'str', params: {}, interval: 0.05, maxInterval: 0.2, timeout: 20, wires: [['obs1'], ['obs1']] },
      ...route('genie-bad', 'gc-bad'),
      { id: 'gc-bad', type: 'genie-command', z, tenant: 'gt-bad', instrument: GENIE_SEED.reader, instrumentType: 'str', action: 'Read Plate', actionType: 'str', params: {}, interval: 0.05, maxInterval: 0.2, timeout: 20, wires: [['obs1'], ['obs1']] },
      ...route('bioaf', 'bu-ok'),
      { id: 'bu-ok', type: 'bioaf-upsert', z, host: 'bh-ok', mode: 'upsert', resource: 'project', externalId: 'externalId', externalIdType: 'msg', wires: [['obs1']] },
      ...route('bioaf-bad', 'bu-bad'),
      { id: 'bu-bad', type: 'bioaf-upsert', z, host: 'bh-bad', mode: 'upsert', resource: 'project', externalId: 'externalId', externalIdType: 'msg', wires: [['obs1']] },
      { id: 'in-hook', type: 'http in', z, url: '/canary/hook', method: 'post', upload: false, skipBodyParsing: true, wires: [['verify']] },
      { id: 'verify', type: 'bioaf-webhook-verify', z, host: 'bh-ok', tolerance: 300, maxBytes: 1048576, retentionHours: 1, wires: [['hook-ok', 'obs1'], ['hook-rej', 'obs1']] },
      { id: 'hook-ok', type: 'http response', z, statusCode: '', headers: {}, wires: [] },
      { id: 'hook-rej', type: 'http response', z, statusCode: '', headers: {}, wires: [] },
    ]);
    // The deploy can answer before the HTTP In routes exist.
    const t0 = Date.now();
    while ((await fetch(`${red.url}/canary/hook`, { method: 'POST', body: '{}' })).status === 404) {
      if (Date.now() - t0 > 20_000) throw new Error('HTTP In routes did not appear');
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    await red?.stop();
    await sim?.close();
    await new Promise((r) => capture?.close(r));
  });

  test('admin routes: hostile input never expands ${…}, never sends a credential to a URL from the request', async () => {
    const hostileUrl = `${captureUrl}/\${LABWIRE_CANARY}`;
    // (b) literal variant with ${…} anywhere: refused before any request, "deploy first".
    for (const [url, token] of [
      [hostileUrl, TYPED_TOKEN],
      [captureUrl, '${BENCHLING_API_KEY}'],
      [captureUrl, '${LABWIRE_CANARY}'],
      [`${captureUrl}/?k=\${GENIE_CANARY_TOKEN}`, '${GENIE_CANARY_TOKEN}'],
    ]) {
      for (const p of ['/labwire/genie/instruments', `/labwire/genie/instruments/${GENIE_SEED.shaker}/actions`, `/labwire/genie/instruments/${GENIE_SEED.shaker}/actions/Shake`]) {
        const r = await admin(`${p}?tenant=gt-ok&url=${encodeURIComponent(url)}`, { 'X-Genie-Token': token });
        assert.equal(r.status, 400, r.text);
        assert.match(r.body.error, /environment variables are only expanded in a deployed config node — deploy first/);
      }
    }
    // Not plain http(s), or with a user name / password / query: refused without echoing it.
    for (const url of ['http://user:pw@127.0.0.1:1/', `${captureUrl}/?q=1`, 'file:///etc/passwd', 'javascript:alert(1)', 'not a url']) {
      const r = await admin(`/labwire/genie/instruments?url=${encodeURIComponent(url)}`, { 'X-Genie-Token': TYPED_TOKEN });
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.error, /not usable: it must be an http\(s\) URL without user name, password, \? or #/);
      assert.ok(!r.text.includes(url), 'the URL is not echoed');
    }
    assert.equal(captured.length, 0, `nothing reached the capture server: ${JSON.stringify(captured)}`);

    // (a) by id: a `url` in the query and a "kept" token are ignored — the deployed tenant's own URL.
    for (const tenant of ['gt-ok', 'gt-env']) {
      const byId = await admin(`/labwire/genie/instruments?tenant=${tenant}&url=${encodeURIComponent(captureUrl)}`, { 'X-Genie-Token': '__PWRD__' });
      assert.equal(byId.status, 200, byId.text);
      assert.equal(byId.body.length, 4);
    }
    const rejected = await admin(`/labwire/genie/instruments?tenant=gt-bad&url=${encodeURIComponent(captureUrl)}`);
    assert.equal(rejected.status, 502);
    assert.match(rejected.body.error, /HTTP 401/);
    // Path input is encoded, never expanded; `..` cannot climb out of /instruments.
    const echoed = await admin(`/labwire/genie/instruments/${encodeURIComponent('${LABWIRE_CANARY}')}/actions?tenant=gt-ok`);
    assert.equal(echoed.status, 404, echoed.text);
    for (const seg of ['..', '.', '%2e%2e', '%252e%252e']) {
      const r = await admin(`/labwire/genie/instruments/${seg}/actions/..?tenant=gt-ok`);
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.error, /is not a valid instrument uid, action name or command id/);
    }
    const noTenant = await admin(`/labwire/genie/instruments?tenant=${encodeURIComponent('${LABWIRE_CANARY}')}`);
    assert.equal(noTenant.status, 400);
    assert.match(noTenant.body.error, /not deployed yet: deploy first/);
    assert.equal(captured.length, 0, `nothing reached the capture server: ${JSON.stringify(captured)}`);

    // (b) literal variant with literal values: exactly one request to exactly that URL, with the
    // typed token, and a redirect is not followed.
    const lit = await admin(`/labwire/genie/instruments?url=${encodeURIComponent(`${captureUrl}/redirect`)}`, { 'X-Genie-Token': TYPED_TOKEN });
    assert.equal(lit.status, 502, lit.text);
    assert.equal(captured.length, 1, JSON.stringify(captured));
    assert.equal(captured[0].url, '/redirect/instruments');
    assert.equal(captured[0].headers.authorization, `Bearer ${TYPED_TOKEN}`);
    const plain = await admin(`/labwire/genie/instruments?url=${encodeURIComponent(captureUrl)}`, { 'X-Genie-Token': TYPED_TOKEN });
    assert.equal(plain.status, 200, plain.text);
    assert.deepEqual(plain.body, []);
    assert.ok(!captured.some((c) => c.url.includes('followed')), 'the redirect was not followed');

    // Benchling schemas: by deployed id only; request headers and hostile ids change nothing.
    for (const id of ['bt-key', 'bt-env', 'bt-oauth']) {
      const r = await admin(`/labwire/benchling/tenants/${id}/schemas?url=${encodeURIComponent(captureUrl)}`, { 'X-Genie-Token': '${BENCHLING_API_KEY}', Authorization: 'Bearer ${LABWIRE_CANARY}' });
      assert.equal(r.status, 200, r.text);
      assert.ok(Array.isArray(r.body));
    }
    for (const id of ['${LABWIRE_CANARY}', '${BENCHLING_API_KEY}', 'gt-ok', 'obs1']) {
      const r = await admin(`/labwire/benchling/tenants/${encodeURIComponent(id)}/schemas`);
      assert.equal(r.status, 404, r.text);
      assert.equal(r.body.code, 'NOT_DEPLOYED');
    }
    assert.equal(captured.length, 2, 'only the two literal-URL requests reached the capture server');
  });

  test('nodes: success and failure paths, then the canary and every credential are nowhere in clear', async () => {
    const run = async (name: string, body: unknown) => {
      const r = await fetch(`${red.url}/canary/${name}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(r.status, 202);
    };
    await run('bench', { tag: 'bench-ok', path: '/assay-run-schemas' });
    await run('bench', { tag: 'bench-404', path: '/assay-runs/${LABWIRE_CANARY}' });
    await run('bench', { tag: 'bench-abs', path: `${captureUrl}/\${BENCHLING_API_KEY}` });
    await run('bench-env', { tag: 'bench-env-ok', path: '/assay-run-schemas' });
    await run('bench-oauth', { tag: 'bench-oauth-ok', path: '/assay-run-schemas' });
    await run('genie', { tag: 'genie-ok', values: { 'Plate ID': 'P-1', Wavelength: 405 } });
    await run('genie', { tag: 'genie-invalid', values: { 'Plate ID': '${LABWIRE_CANARY}', Wavelength: 7 } });
    await run('genie-env', { tag: 'genie-env-ok', values: { 'Plate ID': 'P-2', Wavelength: 450 } });
    await run('genie-bad', { tag: 'genie-401', values: { 'Plate ID': 'P-3', Wavelength: 405 } });
    await run('bioaf', { tag: 'bioaf-ok', externalId: 'P-canary', payload: { name: 'Canary project' } });
    await run('bioaf', { tag: 'bioaf-unknown', externalId: 'P-canary-2', payload: { name: 'x', '${LABWIRE_CANARY}': 1 } });
    await run('bioaf-bad', { tag: 'bioaf-401', externalId: 'P-canary-3', payload: { name: 'x' } });

    // Webhooks: a correctly signed delivery and one signed with a wrong secret.
    const hook = async (secret: string) => {
      const body = JSON.stringify({ event: 'webhook.test', data: { n: 1 } });
      const ts = String(Math.floor(Date.now() / 1000));
      const sig = crypto.createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
      const r = await fetch(`${red.url}/canary/hook`, { method: 'POST', headers: { 'content-type': 'application/json', 'X-bioAF-Signature': `t=${ts},v1=${sig}` }, body });
      return r.status;
    };
    sim.bioaf.addSubscription({ url: `${red.url}/canary/hook`, secret: WEBHOOK_SECRET_2 });
    const { deliveries } = sim.bioaf.emitEvent('sample.created', { sample_id: 1, external_id: 'S-canary', experiment_id: 1 });
    const hookOk = (await sim.bioaf.waitForDelivery(deliveries[0], undefined, 15_000)).attempts[0].status;
    const hookBad = await hook('whsec_attacker_guess_0000000000000000000000');
    assert.equal(hookBad, 401);

    const tags = ['bench-ok', 'bench-404', 'bench-abs', 'bench-env-ok', 'bench-oauth-ok', 'genie-ok', 'genie-invalid', 'genie-env-ok', 'genie-401', 'bioaf-ok', 'bioaf-unknown', 'bioaf-401'];
    const observed = () => log.filter((l) => l.includes('OBSERVED '));
    // A success is a msg on the node's (first) output; a failure is the Catch node's msg.error.
    const seen = (tag: string) => observed().some((l) => l.includes(`"tag":"${tag}"`) && (tag.endsWith('ok') ? !/"error":\{"message"/.test(l) : /"error":\{"message"/.test(l)));
    const t0 = Date.now();
    while (!tags.every(seen)) {
      if (Date.now() - t0 > 30_000) {
        const missing = tags.filter((tag) => !seen(tag));
        assert.fail(`not all runs observed (missing ${missing.join(', ')}):\n${log.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(observed().some((l) => l.includes('"status"') && l.includes('"fill":"red"')), 'red statuses were observed');
    assert.ok(hookOk === 200 || hookOk === 204, `signed delivery accepted: ${hookOk}`);

    // Where to look.
    const leaks: string[] = [];
    for (const c of captured) leaks.push(...findLeaks(`capture ${c.method} ${c.url}`, `${c.method} ${c.url}\n${JSON.stringify(c.headers)}\n${c.body}`));
    leaks.push(...findLeaks('admin responses', responses.join('\n')));
    leaks.push(...findLeaks('Node-RED log', log.join('\n')));
    const flowsRes = await admin('/flows', { 'Node-RED-API-Version': 'v2' });
    assert.equal(flowsRes.status, 200);
    leaks.push(...findLeaks('GET /flows', flowsRes.text));
    for (const id of ['bt-key', 'bt-oauth', 'gt-ok', 'bh-ok']) {
      const r = await admin(`/credentials/${id.startsWith('bt') ? 'benchling-tenant' : id.startsWith('gt') ? 'genie-tenant' : 'bioaf-host'}/${id}`);
      leaks.push(...findLeaks(`GET /credentials/…/${id}`, r.text));
    }
    const files = filesUnder(userDir);
    assert.ok(files.some((f) => f.endsWith('flows.json')) && files.some((f) => f.endsWith('flows_cred.json')), files.join(', '));
    for (const f of files) leaks.push(...findLeaks(path.relative(userDir, f), fs.readFileSync(f, 'latin1')));
    assert.deepEqual(leaks, []);
    // The `${…}` references themselves are configuration, kept as written.
    assert.match(fs.readFileSync(path.join(userDir, 'flows.json'), 'utf8'), /benchling-tenant/);
    assert.equal(red.child.exitCode, null, 'Node-RED is still running');
  });
});
