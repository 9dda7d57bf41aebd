/**
 * Server answers that lack what the API promises (an id, a status, a task id… that the next call
 * needs), inside a real Node-RED: each named case puts a tampering proxy in front of the lab
 * simulator that answers ONE call with a deficient body, and asserts a Catch-able BAD_RESPONSE
 * naming the call and the field (with the msg), the node's red status, that the runtime keeps
 * running — the same node handles the next message once the server answers properly — and that no
 * promise rejection went unhandled.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { startLabSimulator, LabSimulator, SEED, DEFAULT_API_KEY } from '../simulator';
import { DEFAULT_GENIE_TOKEN, GENIE_SEED } from '../simulator/genie';
import { DEFAULT_BIOAF_API_KEY } from '../simulator/bioaf';
import { messages, nextMessage, tempDir, unload } from './support/nodered';
import { assertAlive, assertCaught, assertStatusTells, helper, loadCase, redStatus, rejections, TamperProxy, type Tamper } from './support/bad-input';

type Service = 'benchling' | 'genie' | 'bioaf' | 'ot2runs' | 'ot2sessions';

interface AnswerCase {
  name: string;
  service: Service;
  /** The node under test (id `n`) without its config node property. */
  node: () => Record<string, unknown>;
  tamper: Tamper;
  msg: () => Record<string, unknown>;
  /** Sent (untampered) before the case, e.g. to create the record a PATCH then changes. */
  prime?: () => Record<string, unknown>;
  message: RegExp;
  /** Output port the good message leaves on afterwards (default 0). */
  okOutput?: number;
  /** The good message sent after the case (default: `msg()` again). */
  goodMsg?: () => Record<string, unknown>;
}

let dir = '';
const file = (name: string, text: string) => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
};
const PROTOCOL = "metadata = {'protocolName': 'labwire bad answers', 'apiLevel': '2.13'}\n# sim-steps: 2\ndef run(protocol):\n    protocol.comment('hi')\n";
let seq = 0;
const RUN = SEED.runs[0].id;

const uploadBlob = () => ({ type: 'benchling-upload-blob', file: 'payload', fileType: 'msg', wires: [['ok']] });
const createProcessor = () => ({
  type: 'benchling-create-processor',
  assayRunId: 'assayRunId',
  assayRunIdType: 'msg',
  configName: SEED.outputConfigName,
  configNameType: 'str',
  fileId: 'blobId',
  fileIdType: 'msg',
  wires: [['ok']],
});
const pollTask = () => ({ type: 'benchling-poll-task', taskId: 'taskId', taskIdType: 'msg', interval: 0.02, maxInterval: 0.05, timeout: 10, wires: [['ok'], ['failed']] });
const generateInput = () => ({ type: 'benchling-generate-input', assayRunId: 'assayRunId', assayRunIdType: 'msg', configName: SEED.inputConfigName, configNameType: 'str', output: 'payload', interval: 0.02, timeout: 10, wires: [['ok']] });
const genieCommand = () => ({
  type: 'genie-command',
  instrument: GENIE_SEED.reader,
  instrumentType: 'str',
  action: 'Read Plate',
  actionType: 'str',
  params: { '64580a03aa00000000000001': 'P1', '64580a03aa00000000000002': 450 },
  interval: 0.02,
  maxInterval: 0.05,
  timeout: 20,
  wires: [['ok'], ['failed']],
});
const upsert = (mode = 'upsert') => () => ({ type: 'bioaf-upsert', mode, resource: 'project', externalId: 'externalId', externalIdType: 'msg', wires: [['ok']] });
const ot2Run = () => ({ type: 'ot2-run', protocol: 'payload', protocolType: 'msg', protocolName: 'filename', protocolNameType: 'msg', supportFilesType: 'none', parametersType: 'none', interval: 0.02, loadTimeout: 10, runTimeout: 0, offlineTimeout: 10, wires: [['ok'], ['failed']] });

const missing = (what: string, field: string) => new RegExp(`${what} answered without "${field}", which the API promises`);

function blobCsv(): Record<string, unknown> {
  return { payload: file(`data_${++seq}.csv`, `well,od\nA1,0.${seq}\n`) };
}

const CASES: AnswerCase[] = [
  // ---- Benchling: blobs (Buffer: POST /blobs; file: start, parts, complete)
  { name: 'Benchling POST /blobs (Buffer) without id', service: 'benchling', node: uploadBlob, tamper: { method: 'POST', path: /\/blobs$/, body: { name: 'x.csv' } }, msg: () => ({ payload: Buffer.from(`a,b\n${++seq}\n`), filename: 'x.csv' }), message: missing('Benchling POST /blobs', 'id') },
  { name: 'Benchling :start-multipart-upload without id', service: 'benchling', node: uploadBlob, tamper: { method: 'POST', path: /\/blobs:start-multipart-upload$/, body: { name: 'x.csv', uploadStatus: 'IN_PROGRESS' } }, msg: blobCsv, message: missing('Benchling POST /blobs:start-multipart-upload', 'id') },
  { name: 'Benchling blob part without eTag', service: 'benchling', node: uploadBlob, tamper: { method: 'POST', path: /\/blobs\/[^/]+\/parts$/, body: { partNumber: 1 } }, msg: blobCsv, message: /Benchling POST \/blobs\/\S+\/parts \(part 1\) answered without "eTag"/ },
  { name: 'Benchling blob part without partNumber', service: 'benchling', node: uploadBlob, tamper: { method: 'POST', path: /\/blobs\/[^/]+\/parts$/, body: { eTag: '"abc"' } }, msg: blobCsv, message: /Benchling POST \/blobs\/\S+\/parts \(part 1\) answered without "partNumber"/ },
  { name: 'Benchling :complete-upload without id', service: 'benchling', node: uploadBlob, tamper: { method: 'POST', path: /\/blobs\/[^/]+:complete-upload$/, body: { uploadStatus: 'COMPLETE' } }, msg: blobCsv, message: /Benchling POST \/blobs\/\S+:complete-upload answered without "id"/ },
  // ---- Benchling: processors and tasks
  { name: 'Benchling create processor without id (no blank :process-output)', service: 'benchling', node: createProcessor, tamper: { method: 'POST', path: /\/automation-output-processors$/, body: { status: 'NOT_STARTED' } }, msg: () => ({ assayRunId: RUN, blobId: sim.benchling.addBlob(`p${++seq}.csv`, 'a\n1\n').id }), message: missing('Benchling POST /automation-output-processors', 'id') },
  { name: 'Benchling create processor without status', service: 'benchling', node: createProcessor, tamper: { method: 'POST', path: /\/automation-output-processors$/, body: { id: 'aop_bogus' } }, msg: () => ({ assayRunId: RUN, blobId: sim.benchling.addBlob(`p${++seq}.csv`, 'a\n1\n').id }), message: missing('Benchling POST /automation-output-processors', 'status') },
  { name: 'Benchling :process-output without taskId (names the processor)', service: 'benchling', node: createProcessor, tamper: { method: 'POST', path: /:process-output$/, body: {} }, msg: () => ({ assayRunId: RUN, blobId: sim.benchling.addBlob(`p${++seq}.csv`, 'a\n1\n').id }), message: /Benchling process-output for \S+ returned no taskId/ },
  { name: 'Benchling GET /tasks/{id} without status', service: 'benchling', node: pollTask, tamper: { method: 'GET', path: /\/tasks\/[^/]+$/, body: { id: 'task' } }, msg: () => ({ taskId: 'task_missing_status' }), message: /Benchling GET \/tasks\/task_missing_status answered without "status"/, okOutput: 0, goodMsg: () => ({ taskId: sim.benchling.listTasks()[0]?.id ?? 'none' }) },
  { name: 'Benchling GET processor (followed) without status', service: 'benchling', node: pollTask, tamper: { method: 'GET', path: /\/automation-output-processors\/[^/:]+$/, body: { id: 'aop_x' } }, msg: () => ({ followProcessor: true, processorId: 'aop_x' }), message: /Benchling GET \/automation-output-processors\/aop_x answered without "status"/, goodMsg: () => ({ taskId: sim.benchling.listTasks()[0]?.id ?? 'none' }) },
  // ---- Benchling: input generation and runs
  { name: 'Benchling input generators listed without id', service: 'benchling', node: generateInput, tamper: { method: 'GET', path: /\/automation-input-generators$/, body: { automationInputGenerators: [{ automationFileConfig: { name: SEED.inputConfigName } }] } }, msg: () => ({ assayRunId: RUN }), message: /Benchling GET \/assay-runs\/\S+\/automation-input-generators \(automationInputGenerators\) answered without "id"/ },
  { name: 'Benchling :generate-input without taskId', service: 'benchling', node: generateInput, tamper: { method: 'POST', path: /:generate-input$/, body: {} }, msg: () => ({ assayRunId: RUN }), message: /Benchling generate-input for aif_SIMgen01 returned no taskId/ },
  { name: 'Benchling download-url without downloadURL', service: 'benchling', node: generateInput, tamper: { method: 'GET', path: /\/download-url$/, body: { expiresAt: 'soon' } }, msg: () => ({ assayRunId: RUN }), message: /Benchling GET \/blobs\/\S+\/download-url answered without "downloadURL"/ },
  { name: 'Benchling assay runs listed without id', service: 'benchling', node: () => ({ type: 'benchling-find-runs', schemaId: SEED.schemaId, schemaIdType: 'str', output: 'array', wires: [['ok']] }), tamper: { method: 'GET', path: /\/assay-runs$/, body: { assayRuns: [{ name: 'run without id' }] } }, msg: () => ({}), message: /Benchling GET \/assay-runs \(assayRuns\) answered without "id"/ },
  // ---- Genie LabOS
  { name: 'Genie create command without id', service: 'genie', node: genieCommand, tamper: { method: 'POST', path: /\/instruments\/[^/]+\/commands$/, body: { data: { status: 'running' } } }, msg: () => ({}), message: /Genie LabOS POST \/instruments\/\S+\/commands returned no command id/ },
  { name: 'Genie command without status', service: 'genie', node: genieCommand, tamper: { method: 'GET', path: /\/instruments\/[^/]+\/commands\/[^/]+$/, body: { data: { id: 'c1' } } }, msg: () => ({}), message: /Genie LabOS GET \/instruments\/\S+\/commands\/\S+ returned a command without a status/ },
  { name: 'Genie action definition without name', service: 'genie', node: genieCommand, tamper: { method: 'GET', path: /\/actions\/[^/]+$/, body: { data: { parameters: [] } } }, msg: () => ({}), message: /Genie LabOS returned an action without a name/ },
  // ---- bioAF
  { name: 'bioAF create without id', service: 'bioaf', node: upsert(), tamper: { method: 'POST', path: /\/projects$/, status: 201, body: { external_id: 'P' } }, msg: () => ({ externalId: `P-${++seq}`, payload: { name: 'Project' } }), message: /bioAF POST \/projects answered without "id"/ },
  { name: 'bioAF lookup by external id without id', service: 'bioaf', node: upsert('lookup'), tamper: { method: 'GET', path: /\/projects\/by-external\/[^/]+$/, body: { external_id: 'P' } }, msg: () => ({ externalId: 'P-lookup' }), message: /bioAF GET \/projects\/by-external\/P-lookup answered without "id"/ },
  { name: 'bioAF PATCH without id', service: 'bioaf', node: upsert(), prime: () => ({ externalId: 'P-patch', payload: { name: 'First' } }), tamper: { method: 'PATCH', path: /\/projects\/\d+$/, body: { name: 'Second' } }, msg: () => ({ externalId: 'P-patch', payload: { name: `Second ${++seq}` } }), message: /bioAF PATCH \/projects\/\d+ answered without "id"/ },
  { name: 'bioAF list without items', service: 'bioaf', node: upsert('list'), tamper: { method: 'GET', path: /\/projects$/, body: { next_cursor: null } }, msg: () => ({}), message: /bioAF GET \/projects answered without an items list/ },
  // ---- Opentrons OT-2
  { name: 'OT-2 (runs API) POST /protocols without id', service: 'ot2runs', node: ot2Run, tamper: { method: 'POST', path: /^\/protocols$/, status: 201, body: { data: { protocolType: 'python' } } }, msg: () => ({ payload: file(`proto_${++seq}.py`, PROTOCOL + `# ${seq}\n`) }), message: missing('Opentrons POST /protocols', 'id') },
  { name: 'OT-2 (runs API) POST /runs without id', service: 'ot2runs', node: ot2Run, tamper: { method: 'POST', path: /^\/runs$/, status: 201, body: { data: { status: 'idle' } } }, msg: () => ({ payload: file(`proto_${++seq}.py`, PROTOCOL + `# ${seq}\n`) }), message: missing('Opentrons POST /runs', 'id') },
  { name: 'OT-2 (4.x sessions) POST /protocols without id', service: 'ot2sessions', node: ot2Run, tamper: { method: 'POST', path: /^\/protocols$/, status: 201, body: { data: {} } }, msg: () => ({ payload: file(`proto_${++seq}.py`, PROTOCOL + `# ${seq}\n`) }), message: missing('Opentrons POST /protocols', 'id') },
  { name: 'OT-2 (4.x sessions) POST /sessions without id', service: 'ot2sessions', node: ot2Run, tamper: { method: 'POST', path: /^\/sessions$/, status: 201, body: { data: { sessionType: 'protocol' } } }, msg: () => ({ payload: file(`proto_${++seq}.py`, PROTOCOL + `# ${seq}\n`) }), message: missing('Opentrons POST /sessions', 'id') },
];

let sim: LabSimulator;

describe('server answers missing what the API promises: a Catch-able BAD_RESPONSE naming the call and field', () => {
  const proxies = {} as Record<Service, TamperProxy>;

  before(async () => {
    dir = tempDir('bad-answers');
    sim = await startLabSimulator({ benchling: { rateLimit: false, taskDurationMs: 30 }, genie: { commandDurationMs: 30, timeScaleMs: 1 } });
    proxies.benchling = await new TamperProxy(sim.benchling.url).start();
    proxies.genie = await new TamperProxy(sim.genie.url).start();
    proxies.bioaf = await new TamperProxy(sim.bioaf.url).start();
    proxies.ot2runs = await new TamperProxy(sim.ot2.runs.url).start();
    proxies.ot2sessions = await new TamperProxy(sim.ot2.sessions.url).start();
    await helper.startServer();
  });
  afterEach(async () => {
    for (const p of Object.values(proxies)) p.tamper = null;
    await unload();
  });
  after(async () => {
    await helper.stopServer();
    for (const p of Object.values(proxies)) await p.close();
    await sim.close();
  });

  function configNode(service: Service): { types: string[]; node: Record<string, unknown>; prop: string; creds: Record<string, unknown> } {
    const url = proxies[service].url;
    switch (service) {
      case 'benchling':
        return { types: ['benchling-tenant'], node: { id: 'cfg', type: 'benchling-tenant', url, timeout: 5, rateLimit: 600 }, prop: 'tenant', creds: { apiKey: DEFAULT_API_KEY } };
      case 'genie':
        return { types: ['genie-tenant'], node: { id: 'cfg', type: 'genie-tenant', url: url + new URL(sim.genie.apiBase).pathname, timeout: 5 }, prop: 'tenant', creds: { token: DEFAULT_GENIE_TOKEN } };
      case 'bioaf':
        return { types: ['bioaf-host'], node: { id: 'cfg', type: 'bioaf-host', url, timeout: 5 }, prop: 'host', creds: { apiKey: DEFAULT_BIOAF_API_KEY } };
      default:
        return { types: ['ot2-robot'], node: { id: 'cfg', type: 'ot2-robot', host: url, timeout: 5, generation: service === 'ot2runs' ? 'runs' : 'sessions' }, prop: 'robot', creds: {} };
    }
  }

  test('the suite holds its named cases', () => {
    assert.ok(CASES.length >= 20, `${CASES.length} cases`);
    assert.equal(new Set(CASES.map((c) => c.name)).size, CASES.length);
  });

  for (const c of CASES) {
    test(c.name, async () => {
      const before = rejections.length;
      const cfg = configNode(c.service);
      const n: Record<string, unknown> = { id: 'n', ...c.node(), [cfg.prop]: 'cfg' };
      const type = String(n.type);
      const h = await loadCase({
        types: [...cfg.types, type],
        nodes: [cfg.node, n, { id: 'ok', type: 'helper' }, { id: 'failed', type: 'helper' }],
        credentials: { cfg: cfg.creds },
      });
      const node = h.getNode('n');
      if (c.prime) {
        const primed = nextMessage(h.getNode('ok'), 15_000);
        node.receive(c.prime());
        await primed;
      }
      const proxy = proxies[c.service];
      proxy.tamper = c.tamper;
      const caught = messages(h.getNode('caught'), 1, 15_000);
      node.receive({ ...c.msg(), marker: 1 });
      const [err] = await caught;
      assert.ok(proxy.hits > 0, 'the tampered call was made');
      assertCaught(err, 1, 'BAD_RESPONSE', c.message);
      assertStatusTells(redStatus(node), err);
      // The same node handles the next message once the server answers properly.
      proxy.tamper = null;
      const good = nextMessage(h.getNode(c.okOutput === 1 ? 'failed' : 'ok'), 20_000);
      node.receive({ ...(c.goodMsg ?? c.msg)(), marker: 2 });
      await good;
      await assertAlive(h, before);
    });
  }
});
