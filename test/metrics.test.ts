/**
 * The operator's metrics in a real Node-RED process (adminAuth on) against the simulators: a file
 * pipeline (watch → upload → processor → poll → ack) with two files, one OT-2 run and two Genie
 * commands; then `GET /labwire/metrics` is parsed with a Prometheus text-format parser and its
 * names, labels and values checked. Without a token the endpoint answers 401; a bearer token from
 * adminAuth's `tokens` function and a password user with only `labwire.read` both may scrape.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { startLabSimulator, LabSimulator, SEED, DEFAULT_API_KEY, GENIE_SEED, DEFAULT_GENIE_TOKEN } from '../simulator';
import { freePort, startNodeRed, NodeRedProcess } from '../scripts/node-red-process';
import { tempDir, delay } from './support/nodered';
import { parseExposition, histogram, type Family, type MetricType } from './support/prometheus-text';
import { countHttpAttempt, registry, setFileCountsSource } from '../nodes/lib/metrics';
import { journeyEvents, registerJourneyOwner, type JourneyRecord } from '../nodes/lib/journey';
// Node-RED's own password hashing (a dependency of node-red).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const bcrypt = require(require.resolve('bcryptjs', { paths: [path.dirname(require.resolve('node-red/package.json'))] })) as { hashSync(p: string, rounds: number): string };

const ADMIN_TOKEN = 'labwire-test-admin-token';
const SCRAPE_TOKEN = 'labwire-test-scrape-token';
const SCRAPER_PASSWORD = 'scrape-me-please';

function get(url: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`${url}: no answer`)));
    req.end(body);
  });
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(100);
  }
}

function family(fams: Family[], name: string, type: MetricType): Family {
  const f = fams.find((x) => x.name === name);
  assert.ok(f, `${name} is exposed`);
  assert.equal(f.type, type, `${name} is a ${type}`);
  assert.ok((f.help ?? '').length > 10, `${name} has a help text`);
  return f;
}

/** The value of the sample with these labels (0 when there is none: a counter not yet counted). */
function value(f: Family, labels: Record<string, string>): number {
  const s = f.samples.find((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s ? s.value : 0;
}

describe('metrics: GET /labwire/metrics in a real Node-RED', () => {
  let sim: LabSimulator;
  let red: NodeRedProcess | undefined;
  const root = tempDir('metrics');
  const folder = path.join(root, 'in');
  const archive = path.join(root, 'archive');
  const log: string[] = [];
  const protocol = path.join(root, 'protocol.py');

  before(async () => {
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(protocol, "metadata = {'protocolName': 'metrics', 'apiLevel': '2.13'}\n# sim-steps: 3\ndef run(protocol):\n    protocol.comment('hi')\n");
    const timing = { stepMs: 40, analysisMs: 30, loadMs: 30, settleMs: 10 };
    sim = await startLabSimulator({ benchling: { rateLimit: false }, genie: { commandDurationMs: 80, timeScaleMs: 5 }, ot2: { runs: timing, sessions: timing } });
    const admin = bcrypt.hashSync('not-used-here', 8);
    const scraper = bcrypt.hashSync(SCRAPER_PASSWORD, 8);
    const adminAuth = `{ adminAuth: {
      type: 'credentials',
      users: [
        { username: 'admin', password: ${JSON.stringify(admin)}, permissions: '*' },
        { username: 'prometheus', password: ${JSON.stringify(scraper)}, permissions: 'labwire.read' },
      ],
      tokens: async (token) =>
        token === ${JSON.stringify(ADMIN_TOKEN)} ? { username: 'admin', permissions: '*' }
        : token === ${JSON.stringify(SCRAPE_TOKEN)} ? { username: 'prometheus', permissions: 'labwire.read' }
        : null,
    } }`;
    red = await startNodeRed({
      userDir: path.join(root, 'node-red'),
      port: await freePort(),
      env: { NO_PROXY: '127.0.0.1,localhost' },
      settingsCode: adminAuth,
      onLog: (l) => log.push(l),
    });
  });
  after(async () => {
    await red?.stop();
    await sim?.close();
  });

  test('a pipeline, an OT-2 run and Genie commands are counted; the text parses; 401 without a token; read-only users may scrape', async () => {
    const r = red!;
    // The first upload loses its connection (a network outcome, retried by the watcher); the first
    // task poll is refused with 429 (a rate-limit wait).
    sim.benchling.injectFault({ kind: 'reset', method: 'POST', path: /\/blobs/ });
    sim.benchling.injectFault({ kind: '429', method: 'GET', path: /\/tasks\// });
    await r.deploy(
      [
        { id: 'tab', type: 'tab', label: 'metrics' },
        { id: 'tenant', type: 'benchling-tenant', z: 'tab', url: sim.benchling.url, rateLimit: 600, timeout: 5, credentials: { apiKey: DEFAULT_API_KEY } },
        { id: 'watch', type: 'lab-watch-folder', z: 'tab', folder, include: '*.csv', stability: 0.2, probeInterval: 0.1, rescanInterval: 0.5, postAction: 'move', archiveFolder: archive, retryBase: 0.2, retryMax: 0.5, wires: [['upload']] },
        { id: 'upload', type: 'benchling-upload-blob', z: 'tab', tenant: 'tenant', file: 'payload', fileType: 'msg', wires: [['create']] },
        { id: 'create', type: 'benchling-create-processor', z: 'tab', tenant: 'tenant', assayRunId: SEED.runs[0].id, assayRunIdType: 'str', configName: SEED.outputConfigName, configNameType: 'str', fileId: 'blobId', fileIdType: 'msg', wires: [['poll']] },
        { id: 'poll', type: 'benchling-poll-task', z: 'tab', tenant: 'tenant', taskId: 'taskId', taskIdType: 'msg', interval: 0.05, maxInterval: 0.2, timeout: 20, wires: [['watch'], ['watch']] },
        { id: 'catcher', type: 'catch', z: 'tab', scope: ['upload', 'create', 'poll'], uncaught: false, wires: [['watch']] },

        { id: 'robot', type: 'ot2-robot', z: 'tab', host: sim.ot2.runs.url, generation: 'auto', timeout: 5 },
        { id: 'go-ot2', type: 'inject', z: 'tab', props: [{ p: 'payload' }], payload: protocol, payloadType: 'str', once: true, onceDelay: 0.1, repeat: '', wires: [['run']] },
        { id: 'run', type: 'ot2-run', z: 'tab', robot: 'robot', protocol: 'payload', protocolType: 'msg', protocolNameType: 'none', supportFilesType: 'none', parametersType: 'none', keep: false, replaceExisting: true, onClose: 'leave', interval: 0.02, loadTimeout: 5, runTimeout: 0, offlineTimeout: 30, readSteps: true, wires: [[], []] },

        { id: 'genie', type: 'genie-tenant', z: 'tab', url: sim.genie.apiBase, timeout: 5, credentials: { token: DEFAULT_GENIE_TOKEN } },
        { id: 'go-ok', type: 'inject', z: 'tab', props: [{ p: 'values', v: '{"Plate ID":"P-001","Wavelength":600}', vt: 'json' }], once: true, onceDelay: 0.1, repeat: '', wires: [['cmd']] },
        { id: 'go-fail', type: 'inject', z: 'tab', props: [{ p: 'values', v: '{"Plate ID":"FAIL-7","Wavelength":450}', vt: 'json' }], once: true, onceDelay: 0.2, repeat: '', wires: [['cmd']] },
        { id: 'cmd', type: 'genie-command', z: 'tab', tenant: 'genie', instrument: GENIE_SEED.reader, instrumentType: 'str', action: 'Read Plate', actionType: 'str', params: {}, interval: 0.03, maxInterval: 0.1, timeout: 20, killOnStop: true, wires: [[], []] },
      ],
      { Authorization: `Bearer ${ADMIN_TOKEN}` },
    );
    for (const n of [1, 2]) fs.writeFileSync(path.join(folder, `plate-${n}.csv`), `well,od\nA1,0.${n}\n`);

    const url = `${r.url}/labwire/metrics`;
    const scrape = async (headers: Record<string, string> = { Authorization: `Bearer ${SCRAPE_TOKEN}` }) => {
      const res = await get(url, headers);
      assert.equal(res.status, 200, `scrape: HTTP ${res.status} ${res.text.slice(0, 200)}`);
      return { res, fams: parseExposition(res.text) };
    };
    let last: Family[] = [];
    const settled = (fams: Family[]) => {
      const files = fams.find((f) => f.name === 'labwire_files');
      const ot2 = fams.find((f) => f.name === 'labwire_ot2_runs_total');
      const genie = fams.find((f) => f.name === 'labwire_genie_commands_total');
      const hist = fams.find((f) => f.name === 'labwire_file_duration_seconds');
      return !!files && value(files, { state: 'done' }) === 2 && !!hist && histogram(hist).count === 2 && !!ot2 && value(ot2, { outcome: 'succeeded' }) === 1 && !!genie && value(genie, { outcome: 'succeeded' }) + value(genie, { outcome: 'failed' }) === 2;
    };
    await until('two files done, one OT-2 run and two Genie commands in the metrics', async () => settled((last = (await scrape()).fams)), 40_000).catch((err) => {
      console.log('DIAG metrics', JSON.stringify(last), '\nDIAG log', log.slice(-40).join('\n'));
      throw err;
    });

    const { res, fams } = await scrape();
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');

    const files = family(fams, 'labwire_files', 'gauge');
    assert.deepEqual(files.samples.map((m) => m.labels.state).sort(), ['done', 'failed', 'in-progress', 'retrying', 'waiting']);
    assert.equal(value(files, { state: 'done' }), 2);
    assert.equal(value(files, { state: 'failed' }), 0);
    assert.equal(value(files, { state: 'in-progress' }), 0);

    const hist = histogram(family(fams, 'labwire_file_duration_seconds', 'histogram'));
    assert.equal(hist.count, 2);
    assert.ok(hist.sum > 0 && hist.sum < 60, `two short journeys: ${hist.sum} s in all`);
    assert.equal(hist.buckets.get(10), 2, 'both under 10 s');
    assert.ok(hist.buckets.has(3600) && hist.buckets.has(86400), 'buckets reach hours');

    const httpTotal = family(fams, 'labwire_http_requests_total', 'counter');
    for (const m of httpTotal.samples) assert.deepEqual(Object.keys(m.labels).sort(), ['service', 'status']);
    // Per file at least: create blob, complete it, create the processor, poll its task.
    assert.ok(value(httpTotal, { service: 'Benchling', status: '200' }) >= 2 * 3, JSON.stringify(httpTotal.samples));
    assert.equal(value(httpTotal, { service: 'Benchling', status: 'network' }), 1, `the reset upload: ${JSON.stringify(httpTotal.samples)}`);
    assert.equal(value(httpTotal, { service: 'Benchling', status: '429' }), 1, 'the refused poll');
    assert.ok(httpTotal.samples.some((m) => m.labels.service === 'OT-2' && /^2\d\d$/.test(m.labels.status) && m.value > 0), 'OT-2 requests');
    assert.ok(httpTotal.samples.some((m) => m.labels.service === 'Genie LabOS' && /^2\d\d$/.test(m.labels.status) && m.value > 0), 'Genie requests');

    const waited = family(fams, 'labwire_rate_limit_wait_seconds_total', 'counter');
    assert.ok(waited.samples[0].value > 0, `the 429 was waited for: ${waited.samples[0].value} s`);

    const ot2 = family(fams, 'labwire_ot2_runs_total', 'counter');
    assert.deepEqual(ot2.samples.map((m) => [m.labels.outcome, m.value]), [['succeeded', 1]]);
    const genie = family(fams, 'labwire_genie_commands_total', 'counter');
    assert.equal(value(genie, { outcome: 'succeeded' }), 1);
    assert.equal(value(genie, { outcome: 'failed' }), 1);

    // prom-client's process metrics ride along in the pack's registry.
    family(fams, 'process_cpu_seconds_total', 'counter');
    family(fams, 'nodejs_eventloop_lag_seconds', 'gauge');

    // adminAuth: no token, a wrong one → 401; a user with only labwire.read logs in and may scrape, but not read the flows.
    assert.equal((await get(url)).status, 401);
    assert.equal((await get(url, { Authorization: 'Bearer not-a-token' })).status, 401);
    const login = await get(
      `${r.url}/auth/token`,
      { 'Content-Type': 'application/x-www-form-urlencoded' },
      'POST',
      new URLSearchParams({ client_id: 'node-red-admin', grant_type: 'password', scope: '', username: 'prometheus', password: SCRAPER_PASSWORD }).toString(),
    );
    assert.equal(login.status, 200, login.text);
    const accessToken = (JSON.parse(login.text) as { access_token: string }).access_token;
    const byUser = await scrape({ Authorization: `Bearer ${accessToken}` });
    assert.equal(value(family(byUser.fams, 'labwire_files', 'gauge'), { state: 'done' }), 2);
    assert.equal((await get(`${r.url}/flows`, { Authorization: `Bearer ${accessToken}` })).status, 401, 'labwire.read is not flows.read');
    assert.equal((await get(`${r.url}/flows`, { Authorization: `Bearer ${SCRAPE_TOKEN}` })).status, 401);
  });
});

describe('the strict exposition parser (test support)', () => {
  test('reads what prom-client writes, labelled histograms included, and refuses what the format does not allow', async () => {
    const fams = parseExposition(await registry.metrics());
    assert.ok(fams.some((f) => f.name === 'labwire_files'));
    const gc = parseExposition('# TYPE g histogram\ng_bucket{le="1",kind="a"} 1\ng_bucket{le="+Inf",kind="a"} 2\ng_sum{kind="a"} 3\ng_count{kind="a"} 2\ng_bucket{le="1",kind="b"} 0\ng_bucket{le="+Inf",kind="b"} 1\ng_sum{kind="b"} 5\ng_count{kind="b"} 1\n');
    assert.equal(histogram(gc[0], { kind: 'a' }).count, 2);
    assert.equal(histogram(gc[0], { kind: 'b' }).sum, 5);
    for (const bad of [
      'foo bar\n',
      'foo{a="b" 1\n',
      'foo{a=b} 1\n',
      'foo 1 2 3\n',
      'foo{a="b",a="c"} 1\n',
      'foo{a="\\x"} 1\n',
      '# TYPE foo counter\nfoo 1\nfoo 2\n',
      '# TYPE foo counter\nfoo 1\n# TYPE bar gauge\nbar 1\nfoo{x="y"} 2\n',
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
      '# TYPE foo countr\n',
    ]) {
      assert.throws(() => parseExposition(bad), Error, JSON.stringify(bad));
    }
  });
});

describe('labwire_files sources (in process)', () => {
  const rec = (id: string, state: JourneyRecord['state']): JourneyRecord => ({ id, size: 1, mtimeMs: 1, state, emitCount: 1, emittedAt: 1 });
  const files = async () => family(parseExposition(await registry.metrics()), 'labwire_files', 'gauge');

  test('from the registered watchers until a source is set; a source that throws falls back; hooks never throw', async () => {
    const unregister = registerJourneyOwner('w1', {
      note: () => undefined,
      journeys: () => [['a', rec('a', 'emitted')], ['b', rec('b', 'acked')], ['c', rec('c', 'retrying')], ['d', rec('d', 'failed')], ['e', rec('e', 'done')]],
      // e is in the history too: counted once; a file gone before done is not done.
      finishedJourneys: () => [rec('e', 'done'), rec('f', 'done'), { ...rec('g', 'emitted'), gone: 5 }],
      getStatus: () => ({ pending: 3 }),
    });
    try {
      let f = await files();
      assert.deepEqual(Object.fromEntries(f.samples.map((x) => [x.labels.state, x.value])), { waiting: 3, 'in-progress': 2, retrying: 1, failed: 1, done: 2 });

      const unset = setFileCountsSource(() => ({ waiting: 0, 'in-progress': 1, retrying: 0, done: 40, failed: 2 }));
      f = await files();
      assert.equal(value(f, { state: 'done' }), 40);
      setFileCountsSource(() => {
        throw new Error('query module broken');
      });
      f = await files();
      assert.equal(value(f, { state: 'done' }), 2, 'the watchers again');
      unset(); // not the current source any more: leaves it
      setFileCountsSource(undefined);
    } finally {
      unregister();
    }
    assert.doesNotThrow(() => countHttpAttempt(undefined as unknown as string, NaN as unknown as number));
    assert.doesNotThrow(() => journeyEvents.emit('finished', 'x', undefined));
    assert.doesNotThrow(() => journeyEvents.emit('finished', 'x', { firstSentAt: 'soon', doneAt: null }));
  });
});
