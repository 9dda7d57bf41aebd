/**
 * Bad numeric settings of every node and config node, inside a real Node-RED: each named case
 * deploys a flow with one unusable setting and asserts that the node shows a red ring naming the
 * setting at deploy, that EVERY message then fails with a Catch-able BAD_INPUT error naming it
 * (with the msg), and that the runtime keeps running with no unhandled rejection. A config node
 * with a bad setting is reported, naming the setting, by each node that uses it.
 *
 * Table-driven: a case is one line of `NODE_SETTINGS` / `CONFIG_SETTINGS` times a variant.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_API_KEY } from '../simulator';
import { DEFAULT_GENIE_TOKEN } from '../simulator/genie';
import { unload, tempDir } from './support/nodered';
import { assertAlive, assertCaught, assertStatusTells, helper, loadCase, redStatus, rejections, sendAndCatch } from './support/bad-input';

type Rule = { kind: 'seconds' | 'hours' | 'days'; min: number; above?: boolean } | { kind: 'integer'; min: number; max?: number };

/** The config node each node uses, with good settings (the URL is never called by a failing case). */
const CONFIGS: Record<string, { type: string; prop: string; props: Record<string, unknown>; creds: Record<string, unknown> }> = {
  benchling: { type: 'benchling-tenant', prop: 'tenant', props: { url: 'http://127.0.0.1:9', timeout: 5, rateLimit: 60 }, creds: { apiKey: DEFAULT_API_KEY } },
  genie: { type: 'genie-tenant', prop: 'tenant', props: { url: 'http://127.0.0.1:9', timeout: 5 }, creds: { token: DEFAULT_GENIE_TOKEN } },
  ot2: { type: 'ot2-robot', prop: 'robot', props: { host: '127.0.0.1', port: 9, timeout: 5 }, creds: {} },
  bioaf: { type: 'bioaf-host', prop: 'host', props: { url: 'http://127.0.0.1:9', timeout: 5 }, creds: { apiKey: 'biokey_abcdefabcdef.not-a-secret' } },
};

/** Each node type: its config node, settings that work, and a message it would take. */
const NODES: Record<string, { config?: keyof typeof CONFIGS; props: () => Record<string, unknown>; msg: () => Record<string, unknown> }> = {
  'benchling-poll-task': { config: 'benchling', props: () => ({ taskId: 'taskId', taskIdType: 'msg' }), msg: () => ({ taskId: 'task_1' }) },
  'benchling-generate-input': { config: 'benchling', props: () => ({ assayRunId: 'assayRunId', assayRunIdType: 'msg', output: 'payload' }), msg: () => ({ assayRunId: 'run_1' }) },
  'benchling-find-runs': { config: 'benchling', props: () => ({ schemaId: 'assaysch_1', schemaIdType: 'str' }), msg: () => ({}) },
  'benchling-request': { config: 'benchling', props: () => ({ method: 'GET', path: '/assay-runs', pathType: 'str' }), msg: () => ({}) },
  'benchling-upload-blob': { config: 'benchling', props: () => ({ file: 'payload', fileType: 'msg' }), msg: () => ({ payload: Buffer.from('a,b\n'), filename: 'x.csv' }) },
  'benchling-create-processor': {
    config: 'benchling',
    props: () => ({ assayRunId: 'assayRunId', assayRunIdType: 'msg', configName: 'Out', configNameType: 'str', fileId: 'blobId', fileIdType: 'msg' }),
    msg: () => ({ assayRunId: 'run_1', blobId: 'blob_1' }),
  },
  'genie-command': { config: 'genie', props: () => ({ instrument: 'uid_1', instrumentType: 'str', action: 'Read Plate', actionType: 'str', params: {} }), msg: () => ({}) },
  'ot2-run': { config: 'ot2', props: () => ({ protocol: 'payload', protocolType: 'msg' }), msg: () => ({ payload: '/tmp/protocol.py' }) },
  'bioaf-upsert': { config: 'bioaf', props: () => ({ mode: 'upsert', resource: 'project', externalId: 'externalId', externalIdType: 'msg' }), msg: () => ({ externalId: 'P-1', payload: { name: 'p' } }) },
  'bioaf-webhook-verify': { config: 'bioaf', props: () => ({}), msg: () => ({ payload: Buffer.from('{}'), req: { headers: {} } }) },
  'lab-watch-folder': { props: () => ({ folder: tempDir('bad-watch') }), msg: () => ({ topic: 'rescan' }) },
};

/** Every numeric setting of a node: [node type, setting, label, rule]. */
const NODE_SETTINGS: Array<[string, string, string, Rule]> = [
  ['benchling-poll-task', 'interval', 'Poll every', { kind: 'seconds', min: 0.01 }],
  ['benchling-poll-task', 'maxInterval', 'backing off to', { kind: 'seconds', min: 0.01 }],
  ['benchling-poll-task', 'timeout', 'Give up after', { kind: 'seconds', min: 0.01 }],
  ['benchling-generate-input', 'interval', 'Poll every', { kind: 'seconds', min: 0.01 }],
  ['benchling-generate-input', 'timeout', 'give up after', { kind: 'seconds', min: 0.01 }],
  ['genie-command', 'interval', 'Poll every', { kind: 'seconds', min: 0.01 }],
  ['genie-command', 'maxInterval', 'backing off to', { kind: 'seconds', min: 0.01 }],
  ['genie-command', 'timeout', 'Kill after', { kind: 'seconds', min: 0, above: true }],
  ['ot2-run', 'interval', 'Poll every', { kind: 'seconds', min: 0.01 }],
  ['ot2-run', 'loadTimeout', 'Load within', { kind: 'seconds', min: 0, above: true }],
  ['ot2-run', 'runTimeout', 'Run within', { kind: 'seconds', min: 0 }],
  ['ot2-run', 'offlineTimeout', 'Unreachable for', { kind: 'seconds', min: 0 }],
  ['bioaf-upsert', 'pageSize', 'Page size', { kind: 'integer', min: 1, max: 200 }],
  ['bioaf-upsert', 'maxItems', 'At most', { kind: 'integer', min: 1 }],
  ['bioaf-webhook-verify', 'tolerance', 'Clock window', { kind: 'seconds', min: 0, above: true }],
  ['bioaf-webhook-verify', 'maxBytes', 'Largest body', { kind: 'integer', min: 1 }],
  ['bioaf-webhook-verify', 'retentionHours', 'Remember ids for', { kind: 'hours', min: 0, above: true }],
  ['lab-watch-folder', 'pollInterval', 'Poll every', { kind: 'seconds', min: 0.05 }],
  ['lab-watch-folder', 'stability', 'Stable for', { kind: 'seconds', min: 0 }],
  ['lab-watch-folder', 'rescanInterval', 'Rescan every', { kind: 'seconds', min: 0 }],
  ['lab-watch-folder', 'probeInterval', 'Folder check', { kind: 'seconds', min: 0.02 }],
  ['lab-watch-folder', 'retryBase', 'Retry after', { kind: 'seconds', min: 0, above: true }],
  ['lab-watch-folder', 'retryMax', 'Retry at most every', { kind: 'seconds', min: 0, above: true }],
  ['lab-watch-folder', 'giveUpAfter', 'Give up after', { kind: 'hours', min: 0 }],
  ['lab-watch-folder', 'retention', 'Keep history', { kind: 'days', min: 0 }],
];

/** Every numeric setting of a config node: [config, setting, label, rule, the nodes that report it]. */
const CONFIG_SETTINGS: Array<[keyof typeof CONFIGS, string, string, Rule, string[]]> = [
  ['benchling', 'timeout', 'Timeout', { kind: 'seconds', min: 0.1 }, ['benchling-poll-task', 'benchling-generate-input', 'benchling-find-runs', 'benchling-request', 'benchling-upload-blob', 'benchling-create-processor']],
  ['benchling', 'rateLimit', 'Rate limit', { kind: 'integer', min: 1 }, ['benchling-find-runs', 'benchling-request', 'benchling-upload-blob']],
  ['genie', 'timeout', 'Timeout', { kind: 'seconds', min: 0.1 }, ['genie-command']],
  ['ot2', 'port', 'Port', { kind: 'integer', min: 1, max: 65535 }, ['ot2-run']],
  ['ot2', 'timeout', 'Request timeout', { kind: 'seconds', min: 0.1 }, ['ot2-run']],
  ['bioaf', 'timeout', 'Timeout', { kind: 'seconds', min: 0.1 }, ['bioaf-upsert', 'bioaf-webhook-verify']],
];

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function ruleText(r: Rule): string {
  if (r.kind === 'integer') return r.max !== undefined ? `a whole number from ${r.min} to ${r.max}` : `a whole number ≥ ${r.min}`;
  return r.above ? `a number of ${r.kind} greater than ${r.min}` : `a number of ${r.kind} ≥ ${r.min}`;
}

/** The bad values a setting is tried with: negative, zero where it means nothing, not a number, … */
function variants(r: Rule): Array<[string, unknown, string]> {
  const v: Array<[string, unknown, string]> = [
    ['negative', -5, '-5'],
    ['non-numeric text', 'soon', 'soon'],
  ];
  if (r.kind === 'integer') {
    v.push(['fraction', '2.5', '2.5']);
    if (r.max !== undefined) v.push(['above the maximum', r.max + 1, String(r.max + 1)]);
  }
  if (r.min > 0 || ('above' in r && r.above)) v.push(['zero', 0, '0']);
  return v;
}

interface Case {
  name: string;
  type: string;
  props?: Record<string, unknown>;
  config?: Record<string, unknown>;
  env?: Record<string, string>;
  message: RegExp;
}

const cases: Case[] = [];
for (const [type, setting, label, rule] of NODE_SETTINGS) {
  for (const [what, value, shown] of variants(rule)) {
    cases.push({
      name: `${type}: ${setting} ${what} (${JSON.stringify(value)})`,
      type,
      props: { [setting]: value },
      message: new RegExp(`"${esc(label)}" must be ${esc(ruleText(rule))}, got "${esc(shown)}"`),
    });
  }
}
for (const [cfg, setting, label, rule, users] of CONFIG_SETTINGS) {
  const vs = variants(rule);
  users.forEach((type, i) => {
    // Spread the variants over the nodes that use the config node.
    const [what, value, shown] = vs[i % vs.length];
    cases.push({
      name: `${CONFIGS[cfg].type} ${setting} ${what} (${JSON.stringify(value)}) → reported by ${type}`,
      type,
      config: { [setting]: value },
      message: new RegExp(`"${esc(label)}" must be ${esc(ruleText(rule))}, got "${esc(shown)}" \\(in ${CONFIGS[cfg].type} "lab ${cfg}"\\)`),
    });
  });
}
// ${ENV}: Node-RED substitutes a whole-value variable before the node is built; the number is
// checked after substitution, and a variable that is not set is named.
process.env.LW_BAD_NEGATIVE = '-3';
process.env.LW_BAD_TEXT = 'ten';
process.env.LW_GOOD_SECONDS = '2';
cases.push(
  { name: 'benchling-poll-task: interval ${ENV} = -3', type: 'benchling-poll-task', props: { interval: '${LW_BAD_NEGATIVE}' }, message: /"Poll every" must be a number of seconds ≥ 0\.01, got "-3"/ },
  { name: 'genie-command: timeout ${ENV} = "ten"', type: 'genie-command', props: { timeout: '${LW_BAD_TEXT}' }, message: /"Kill after" must be a number of seconds greater than 0, got "ten"/ },
  { name: 'ot2-run: loadTimeout ${ENV} not set', type: 'ot2-run', props: { loadTimeout: '${LW_NOT_SET_ANYWHERE}' }, message: /"Load within": environment variable LW_NOT_SET_ANYWHERE is not set/ },
  { name: 'bioaf-upsert: pageSize "${ENV}0" expands to 20 → ok, maxItems ${ENV} = -3', type: 'bioaf-upsert', props: { pageSize: '${LW_GOOD_SECONDS}0', maxItems: '${LW_BAD_NEGATIVE}' }, message: /"At most" must be a whole number ≥ 1, got "\$\{LW_BAD_NEGATIVE\} = -3"|"At most" must be a whole number ≥ 1, got "-3"/ },
  { name: 'lab-watch-folder: retention ${ENV} not set', type: 'lab-watch-folder', props: { retention: '${LW_NOT_SET_EITHER}' }, message: /"Keep history": environment variable LW_NOT_SET_EITHER is not set/ },
  { name: 'benchling-tenant: timeout ${ENV} = -3 → reported by benchling-find-runs', type: 'benchling-find-runs', config: { timeout: '${LW_BAD_NEGATIVE}' }, message: /"Timeout" must be a number of seconds ≥ 0\.1, got "-3" \(in benchling-tenant "lab benchling"\)/ },
  { name: 'ot2-robot: port ${ENV} not set → reported by ot2-run', type: 'ot2-run', config: { port: '${LW_PORT_NOT_SET}' }, message: /"Port": environment variable LW_PORT_NOT_SET is not set \(in ot2-robot "lab ot2"\)/ },
  { name: 'benchling-poll-task: interval NaN', type: 'benchling-poll-task', props: { interval: 'NaN' }, message: /"Poll every" must be a number of seconds ≥ 0\.01, got "NaN"/ },
  { name: 'genie-command: interval "1e"', type: 'genie-command', props: { interval: '1e' }, message: /"Poll every" must be a number of seconds ≥ 0\.01, got "1e"/ },
  { name: 'ot2-run: two bad settings → both named', type: 'ot2-run', props: { interval: -1, offlineTimeout: 'x' }, message: /2 settings are wrong: "Poll every" must be .*"-1"; "Unreachable for" must be .*"x"/ },
  { name: 'genie-command: own timeout and the tenant timeout bad → both named', type: 'genie-command', props: { timeout: 0 }, config: { timeout: -1 }, message: /2 settings are wrong: "Kill after" must be .*"0"; .*"Timeout" must be .*"-1" \(in genie-tenant "lab genie"\)/ },
);

describe('bad settings: red status at deploy, every message a Catch-able BAD_INPUT, runtime alive', () => {
  before(async () => {
    await helper.startServer();
  });
  afterEach(async () => {
    await unload();
  });
  after(async () => {
    await helper.stopServer();
  });

  test('the table holds at least 80 named cases', () => {
    assert.ok(cases.length >= 80, `${cases.length} cases`);
    assert.equal(new Set(cases.map((c) => c.name)).size, cases.length, 'names are unique');
  });

  for (const c of cases) {
    test(c.name, async () => {
      const spec = NODES[c.type];
      const before = rejections.length;
      const nodes: Array<Record<string, unknown>> = [];
      const credentials: Record<string, unknown> = {};
      const types = [c.type];
      let wires: string[][] = [[]];
      if (c.type === 'benchling-poll-task' || c.type === 'genie-command' || c.type === 'ot2-run' || c.type === 'bioaf-webhook-verify') wires = [[], []];
      const n: Record<string, unknown> = { id: 'n', type: c.type, name: '', ...spec.props(), ...c.props, wires };
      if (spec.config) {
        const cfg = CONFIGS[spec.config];
        nodes.push({ id: 'cfg', type: cfg.type, name: `lab ${spec.config}`, ...cfg.props, ...c.config });
        credentials.cfg = cfg.creds;
        n[cfg.prop] = 'cfg';
        types.unshift(cfg.type);
      }
      nodes.push(n);
      const h = await loadCase({ types, nodes, credentials });
      const node = h.getNode('n');
      assert.ok(node, 'the node was constructed');
      // At deploy: a red ring, before any message.
      const atDeploy = redStatus(node);
      // Every message: a Catch-able BAD_INPUT with the msg, naming the setting.
      const caught = await sendAndCatch(h, 2, spec.msg);
      caught.sort((a, b) => a.marker - b.marker);
      caught.forEach((m, i) => assertCaught(m, i + 1, 'BAD_INPUT', c.message));
      // The red ring tells the same error and names the (first) setting.
      const setting = /"([^"]+)"/.exec(String(caught[0].error.message))![1];
      assert.ok(atDeploy.includes(`"${setting}"`), `status at deploy "${atDeploy}" names "${setting}"`);
      assertStatusTells(atDeploy, caught[0]);
      assertStatusTells(redStatus(node), caught[1]);
      await assertAlive(h, before);
    });
  }

  test('a good ${ENV} value is used (no error): poll-task interval ${LW_GOOD_SECONDS}', async () => {
    const h = await loadCase({
      types: ['benchling-tenant', 'benchling-poll-task'],
      nodes: [
        { id: 'cfg', type: 'benchling-tenant', ...CONFIGS.benchling.props },
        { id: 'n', type: 'benchling-poll-task', tenant: 'cfg', taskId: 'taskId', taskIdType: 'msg', interval: '${LW_GOOD_SECONDS}', wires: [[], []] },
      ],
      credentials: { cfg: CONFIGS.benchling.creds },
    });
    const calls = h.getNode('n').status.args.map((a: any[]) => a[0]);
    assert.ok(!calls.some((s: any) => s.fill === 'red'), 'no red status');
  });
});
