/**
 * Every node of the pack that makes requests, inside a real Node-RED, pointed at a server that
 * never finishes answering: each must end in a Catch-able TIMEOUT carrying the original msg,
 * within the bound its client's own settings allow (attempts × timeout + backoffs), never hang.
 *
 * The slow-loris server (127.0.0.1) has three modes:
 *  - trickle: headers at once, then the JSON body one byte every TRICKLE_MS — never idle as long
 *    as the timeout, so a socket idle timeout (all axios has once headers are in) never fires: in
 *    production one byte a second against a 30 s timeout, here 4 a second against 1 s;
 *  - silent:  reads the request, never answers;
 *  - stall:   headers and the start of the body, then nothing.
 * All nodes run at once in one flow, so the file takes as long as the slowest bound (~25 s).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import type { AddressInfo } from 'net';
import { DEFAULT_API_KEY, DEFAULT_BIOAF_API_KEY, DEFAULT_GENIE_TOKEN } from '../simulator';
import { helper, loadFlow, tempDir, unload } from './support/nodered';

type Mode = 'trickle' | 'silent' | 'stall';

/** The configured timeout of every config node below, in seconds. */
const TIMEOUT_S = 1;
/** A byte this often: well inside TIMEOUT_S, so only a total deadline can end the answer. */
const TRICKLE_MS = 250;

interface SlowServer {
  url: string;
  requests: () => number;
  close: () => Promise<void>;
}

async function slowLoris(mode: Mode): Promise<SlowServer> {
  let n = 0;
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    n++;
    req.resume(); // take any upload in full: the answer is what is slow
    req.on('end', () => {
      if (mode === 'silent') return;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100000' });
      if (mode === 'stall') {
        res.write('{"data":{"id":"');
        return;
      }
      const t = setInterval(() => res.write(' '), TRICKLE_MS);
      timers.add(t);
      res.on('close', () => {
        clearInterval(t);
        timers.delete(t);
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => n,
    close: () =>
      new Promise<void>((r) => {
        timers.forEach(clearInterval);
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A node under test: its flow entry, the msg it gets, and whether its first request may be retried. */
interface Case {
  id: string;
  config: string;
  mode: Mode;
  node: Record<string, unknown>;
  msg: Record<string, unknown>;
  /** The first request is a GET (or declared idempotent): retried after a timeout. */
  retried: boolean;
}

/**
 * The longest a request can take to end in TIMEOUT with the client's actual settings:
 * attempts × timeout, plus the largest backoff between attempts (base·2^i capped, plus jitter,
 * as lib/timing backoffDelay draws it).
 */
function worstCaseMs(client: { timeoutMs: number; retries: number; backoff: { baseMs: number; maxMs: number } }, retried: boolean): number {
  const attempts = retried ? client.retries + 1 : 1;
  let ms = attempts * client.timeoutMs;
  for (let i = 0; i < attempts - 1; i++) ms += Math.min(client.backoff.maxMs, client.backoff.baseMs * 2 ** i) + Math.min(1000, client.backoff.baseMs);
  return ms;
}

describe('slow-loris servers: every requesting node ends in TIMEOUT, none hangs', () => {
  const servers = {} as Record<Mode, SlowServer>;
  let dir: string;

  before(async () => {
    for (const m of ['trickle', 'silent', 'stall'] as Mode[]) servers[m] = await slowLoris(m);
    dir = tempDir('slowloris');
    await helper.startServer();
  });
  after(async () => {
    await unload();
    await helper.stopServer();
    for (const s of Object.values(servers)) await s.close();
  });

  test('each node reports TIMEOUT with its msg within attempts × timeout + backoffs', async () => {
    const file = path.join(dir, 'plate.csv');
    fs.writeFileSync(file, 'well,od\nA1,0.1\n');
    const protocol = path.join(dir, 'proto.py');
    fs.writeFileSync(protocol, "metadata = {'apiLevel': '2.13'}\ndef run(protocol):\n    pass\n");

    const cases: Case[] = [
      { id: 'upload', config: 'bl-trickle', mode: 'trickle', retried: false, node: { type: 'benchling-upload-blob', file: 'payload', fileType: 'msg' }, msg: { payload: file } },
      {
        id: 'create',
        config: 'bl-silent',
        mode: 'silent',
        retried: false,
        node: { type: 'benchling-create-processor', assayRunId: 'assayRunId', assayRunIdType: 'msg', configName: 'Results', configNameType: 'str', fileId: 'blobId', fileIdType: 'msg' },
        msg: { assayRunId: 'run_1', blobId: 'blob_1' },
      },
      // The poller tolerates timeouts until its own limit (1 s here), so it gives up after the first failed poll.
      { id: 'poll', config: 'bl-stall', mode: 'stall', retried: true, node: { type: 'benchling-poll-task', taskId: 'taskId', taskIdType: 'msg', interval: 0.05, maxInterval: 0.1, timeout: 1 }, msg: { taskId: 'task_1' } },
      { id: 'request', config: 'bl-trickle', mode: 'trickle', retried: true, node: { type: 'benchling-request', method: 'GET', path: '/assay-runs/run_1', pathType: 'str' }, msg: {} },
      { id: 'find', config: 'bl-silent', mode: 'silent', retried: true, node: { type: 'benchling-find-runs', schemaId: 'assaysch_1', schemaIdType: 'str', output: 'array' }, msg: {} },
      {
        id: 'generate',
        config: 'bl-stall',
        mode: 'stall',
        retried: true,
        node: { type: 'benchling-generate-input', assayRunId: 'assayRunId', assayRunIdType: 'msg', configName: 'Plate map', configNameType: 'str', output: 'payload', interval: 0.05, timeout: 1 },
        msg: { assayRunId: 'run_1' },
      },
      {
        id: 'genie',
        config: 'genie-t',
        mode: 'trickle',
        retried: true,
        node: { type: 'genie-command', instrument: 'inst_1', instrumentType: 'str', action: 'Read Plate', actionType: 'str', params: {}, interval: 0.05, timeout: 20, killOnStop: false },
        msg: {},
      },
      {
        id: 'ot2',
        config: 'robot',
        mode: 'silent',
        retried: true,
        node: { type: 'ot2-run', protocol: 'payload', protocolType: 'msg', interval: 0.05, loadTimeout: 5, runTimeout: 0, offlineTimeout: 1, onClose: 'leave' },
        msg: { payload: protocol },
      },
      { id: 'bioaf', config: 'bioaf-h', mode: 'trickle', retried: true, node: { type: 'bioaf-upsert', mode: 'upsert', resource: 'project', externalId: 'externalId', externalIdType: 'msg' }, msg: { externalId: 'P-1', payload: { name: 'Plate study' } } },
    ];

    const flow: Record<string, unknown>[] = [
      { id: 'tab', type: 'tab', label: 'slow-loris' },
      { id: 'bl-trickle', type: 'benchling-tenant', z: 'tab', url: servers.trickle.url, rateLimit: 600, timeout: TIMEOUT_S },
      { id: 'bl-silent', type: 'benchling-tenant', z: 'tab', url: servers.silent.url, rateLimit: 600, timeout: TIMEOUT_S },
      { id: 'bl-stall', type: 'benchling-tenant', z: 'tab', url: servers.stall.url, rateLimit: 600, timeout: TIMEOUT_S },
      { id: 'genie-t', type: 'genie-tenant', z: 'tab', url: servers.trickle.url, timeout: TIMEOUT_S },
      { id: 'robot', type: 'ot2-robot', z: 'tab', host: servers.silent.url, generation: 'auto', timeout: TIMEOUT_S },
      { id: 'bioaf-h', type: 'bioaf-host', z: 'tab', url: servers.trickle.url, timeout: TIMEOUT_S },
      { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 'tab' },
    ];
    for (const c of cases) {
      const link = c.config === 'robot' ? { robot: c.config } : c.config === 'bioaf-h' ? { host: c.config } : { tenant: c.config };
      flow.push({ id: c.id, z: 'tab', ...link, ...c.node, wires: [[], []] });
    }
    const types = ['catch', 'benchling-tenant', 'genie-tenant', 'ot2-robot', 'bioaf-host', ...new Set(cases.map((c) => c.node.type as string))];
    const creds = {
      'bl-trickle': { apiKey: DEFAULT_API_KEY },
      'bl-silent': { apiKey: DEFAULT_API_KEY },
      'bl-stall': { apiKey: DEFAULT_API_KEY },
      'genie-t': { token: DEFAULT_GENIE_TOKEN },
      'bioaf-h': { apiKey: DEFAULT_BIOAF_API_KEY },
    };
    const h = await loadFlow(types, flow, creds);

    // The bound of each node, from the settings its deployed client actually has.
    const bounds = new Map<string, number>();
    for (const c of cases) {
      const client = (h.getNode(c.config).client() as { http: unknown }).http as { timeoutMs: number; retries: number; backoff: { baseMs: number; maxMs: number } };
      assert.equal(client.timeoutMs, TIMEOUT_S * 1000, `${c.id}: the config node's timeout reaches its client`);
      bounds.set(c.id, worstCaseMs(client, c.retried));
    }

    const started = new Map<string, number>();
    const took = new Map<string, number>();
    const errors = new Map<string, any>();
    const topics = new Map<string, unknown>();
    const allCaught = new Promise<void>((resolve) => {
      h.getNode('caught').on('input', (msg: any) => {
        const id = msg.probe as string;
        if (!started.has(id) || took.has(id)) return;
        took.set(id, Date.now() - started.get(id)!);
        errors.set(id, msg.error);
        topics.set(id, msg.topic);
        if (took.size === cases.length) resolve();
      });
    });
    for (const c of cases) {
      started.set(c.id, Date.now());
      h.getNode(c.id).receive({ ...c.msg, probe: c.id, topic: `topic of ${c.id}` });
    }
    // Generous: half again the worst case plus 5 s, for a loaded machine.
    const limit = (id: string) => bounds.get(id)! * 1.5 + 5000;
    const overall = Math.max(...cases.map((c) => limit(c.id)));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([allCaught, new Promise((r) => (timer = setTimeout(r, overall)))]);
    clearTimeout(timer);

    const report = cases.map((c) => `${c.id} (${c.mode}): ${took.has(c.id) ? `${(took.get(c.id)! / 1000).toFixed(1)} s` : 'NO ERROR'} of ≤ ${(bounds.get(c.id)! / 1000).toFixed(1)} s worst case`);
    console.log(`slow-loris, timeout ${TIMEOUT_S} s:\n  ${report.join('\n  ')}`);
    for (const c of cases) {
      assert.ok(took.has(c.id), `${c.id}: no Catch within ${overall} ms (${report.join('; ')})`);
      const err = errors.get(c.id);
      assert.equal(err.code, 'TIMEOUT', `${c.id}: ${err.code} ${err.message}`);
      assert.equal(topics.get(c.id), `topic of ${c.id}`, `${c.id}: the original msg travels with the error`);
      assert.ok(took.get(c.id)! <= limit(c.id), `${c.id}: ${took.get(c.id)} ms > ${limit(c.id)} ms`);
    }
  });
});
