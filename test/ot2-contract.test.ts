/**
 * Contract check of the OT-2 simulators against the robot-server's own generated OpenAPI specs
 * (v8.1.0 for the runs API, v4.7.0 for the sessions API): every answer of a full run, of the error
 * paths and of the cleanup is validated against the response schema the spec declares for its
 * path, method and status. Skips (printing why) when ../shared/specs is absent.
 *
 * The specs come from pydantic v1, where an optional field may be sent as null although the
 * schema does not say `nullable` (the robot does send nulls, e.g. metadata.author); optional
 * properties therefore also accept null here.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import Ajv from 'ajv';
import { OpentronsSim, type OtRequestLogEntry } from '../simulator/opentrons';
import { multipartBody } from '../nodes/clients/opentrons/multipart';
import { OpentronsClient } from '../nodes/clients/opentrons/client';
import { ProtocolRunner } from '../nodes/clients/opentrons/runner';
import { sharedDir } from './support/openapi';

const SPECS = {
  runs: 'opentrons-robot-server-v8.1.0.generated.openapi.json',
  sessions: 'opentrons-robot-server-v4.7.0.generated.openapi.json',
};
const specPath = (g: keyof typeof SPECS) => path.join(sharedDir(), 'specs', SPECS[g]);
const skip = fs.existsSync(specPath('runs')) && fs.existsSync(specPath('sessions')) ? false : `Opentrons specs not found in ${path.join(sharedDir(), 'specs')} (set LABWIRE_SHARED_DIR)`;
if (skip) console.log(`# ot2 contract: skipped: ${skip}`);

type Json = Record<string, any>;

function nullableOptionals(s: any): any {
  if (Array.isArray(s)) return s.map(nullableOptionals);
  if (!s || typeof s !== 'object') return s;
  const out: Json = {};
  for (const [k, v] of Object.entries(s)) out[k] = k === 'enum' || k === 'default' || k === 'example' ? v : nullableOptionals(v);
  if (out.properties && typeof out.properties === 'object') {
    const req = new Set<string>(Array.isArray(out.required) ? out.required : []);
    for (const [k, v] of Object.entries(out.properties)) if (!req.has(k)) out.properties[k] = { anyOf: [{ type: 'null' }, v] };
  }
  return out;
}

/** Request schemas made strict: an object that declares its properties takes no others (a misspelt field is a violation). */
function noExtraProperties(s: any): any {
  if (Array.isArray(s)) return s.map(noExtraProperties);
  if (!s || typeof s !== 'object') return s;
  const out: Json = {};
  for (const [k, v] of Object.entries(s)) out[k] = k === 'enum' || k === 'default' || k === 'example' ? v : noExtraProperties(v);
  if (out.properties && typeof out.properties === 'object' && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

class Contract {
  private ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  private spec: Json;
  private compiled = new Map<string, ReturnType<Ajv['compile']>>();
  /** Answers with a status the spec does not declare (checked against the generic error body). */
  readonly undeclared: string[] = [];
  constructor(file: string, private id: string) {
    this.spec = JSON.parse(fs.readFileSync(file, 'utf8'));
    const doc = { $id: id, components: { schemas: nullableOptionals(this.spec.components.schemas) } };
    this.ajv.addSchema(JSON.parse(JSON.stringify(doc).replace(/"#\/components\//g, `"${id}#/components/`)));
    const strict = { $id: `${id}-req`, components: { schemas: noExtraProperties(this.spec.components.schemas) } };
    this.ajv.addSchema(JSON.parse(JSON.stringify(strict).replace(/"#\/components\//g, `"${id}-req#/components/`)));
  }

  /**
   * A request the client sent, as the simulator logged it: the operation exists, every required
   * header and query parameter is there and no undeclared query parameter, and the body (JSON, or
   * multipart fields and file parts — a file part counts as a binary string, a repeated field as an
   * array) matches the declared request body schema with no undeclared field.
   */
  checkRequest(e: OtRequestLogEntry): string[] {
    const t = this.template(e.method, e.path);
    const where = `${e.method} ${e.path}`;
    if (!t) return [`${where}: no such operation in the spec`];
    const op = this.spec.paths[t][e.method.toLowerCase()];
    const out: string[] = [];
    const params: Json[] = op.parameters ?? [];
    for (const p of params) {
      if (!p.required) continue;
      if (p.in === 'header' && e.headers?.[p.name.toLowerCase()] === undefined) out.push(`${where}: header ${p.name} missing`);
      if (p.in === 'query' && e.query?.[p.name] === undefined) out.push(`${where}: query ${p.name} missing`);
    }
    for (const q of Object.keys(e.query ?? {})) if (!params.some((p) => p.in === 'query' && p.name === q)) out.push(`${where}: query ${q} not declared`);
    const content = op.requestBody?.content ?? {};
    const ct = (e.contentType ?? '').split(';')[0].trim().toLowerCase();
    let body: unknown;
    if (e.form) {
      const o: Json = {};
      const add = (k: string, v: string) => (o[k] === undefined ? (o[k] = v) : (o[k] = [].concat(o[k], v as never)));
      for (const [k, v] of Object.entries(e.form.fields)) add(k, v);
      for (const f of e.form.files) add(f.field, `<binary ${f.name}>`);
      // An array-typed field sent once is still an array (FastAPI List[UploadFile]).
      const schemaRef = content['multipart/form-data']?.schema?.$ref as string | undefined;
      const props = schemaRef ? this.spec.components.schemas[schemaRef.split('/').pop()!]?.properties ?? {} : {};
      for (const [k, v] of Object.entries(o)) if (props[k]?.type === 'array' && !Array.isArray(v)) o[k] = [v];
      body = o;
    } else body = e.json;
    if (body === undefined) {
      if (op.requestBody?.required) out.push(`${where}: request body required`);
      return out;
    }
    const schema = content[ct]?.schema;
    if (!schema) return [...out, `${where}: content type ${ct} not declared (${Object.keys(content).join(', ') || 'no body'})`];
    const v = this.ajv.compile(schema.$ref ? { $ref: schema.$ref.replace('#/components/', `${this.id}-req#/components/`) } : schema);
    if (!v(body)) out.push(`${where} request: ${this.ajv.errorsText(v.errors, { separator: '; ' }).slice(0, 600)}`);
    return out;
  }
  template(method: string, p: string): string | undefined {
    return Object.keys(this.spec.paths).find((t) => this.spec.paths[t][method.toLowerCase()] && new RegExp('^' + t.replace(/\{[^}]+\}/g, '[^/]+') + '$').test(p));
  }
  check(method: string, p: string, status: number, body: unknown): string[] {
    const t = this.template(method, p);
    if (!t) return [`${method} ${p}: no such operation in the spec`];
    const op = this.spec.paths[t][method.toLowerCase()];
    const resp = op.responses[String(status)];
    let schema = resp?.content?.['application/json']?.schema;
    if (!resp) {
      this.undeclared.push(`${status} ${method} ${t}`);
      schema = { $ref: this.spec.components.schemas.ErrorBody ? '#/components/schemas/ErrorBody' : '#/components/schemas/ErrorResponse' };
    }
    if (!schema) return [];
    const key = JSON.stringify(schema);
    let v = this.compiled.get(key);
    if (!v) {
      v = this.ajv.compile(schema.$ref ? { $ref: schema.$ref.replace('#/components/', `${this.id}#/components/`) } : schema);
      this.compiled.set(key, v);
    }
    return v(body) ? [] : [`${method} ${t} ${status}: ${this.ajv.errorsText(v.errors, { separator: '; ' }).slice(0, 600)}`];
  }
}

describe('OT-2 simulators vs the robot-server OpenAPI specs', { skip }, () => {
  let runs: OpentronsSim;
  let sessions: OpentronsSim;
  const violations: string[] = [];
  let checked = 0;

  before(async () => {
    runs = await new OpentronsSim({ generation: 'runs', stepMs: 15, analysisMs: 20, settleMs: 5 }).start();
    sessions = await new OpentronsSim({ generation: 'sessions', stepMs: 15, loadMs: 400 }).start();
  });
  after(async () => {
    await runs.close();
    await sessions.close();
  });

  async function call(c: Contract, sim: OpentronsSim, method: string, p: string, body?: { json?: unknown; form?: Array<{ field: string; name?: string; value: string }> }) {
    const headers: Record<string, string> = { 'Opentrons-Version': '2' };
    let data: Buffer | string | undefined;
    if (body?.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      data = JSON.stringify(body.json);
    } else if (body?.form) {
      const parts = body.form.map((f) => (f.name ? { field: f.field, file: { name: f.name, size: Buffer.byteLength(f.value), data: Buffer.from(f.value) } } : { field: f.field, value: f.value }));
      const sb = multipartBody(parts)();
      const chunks: Buffer[] = [];
      for await (const ch of sb.stream) chunks.push(ch as Buffer);
      data = Buffer.concat(chunks);
      headers['Content-Type'] = sb.contentType;
    }
    const res = await fetch(sim.url + p, { method, headers, body: data === undefined ? undefined : typeof data === 'string' ? data : new Uint8Array(data) });
    const json = await res.json();
    const v = c.check(method, p.split('?')[0], res.status, json);
    checked++;
    violations.push(...v);
    return { status: res.status, body: json as Json };
  }
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test('runs API (v8.1.0): full run, pause/play, stop, failures, 404/409/422 answers conform', async () => {
    const c = new Contract(specPath('runs'), 'ot-v8');
    const py = "metadata = {'protocolName': 'x', 'apiLevel': '2.18'}\n# sim-steps: 3\n";
    await call(c, runs, 'GET', '/health');
    const up = await call(c, runs, 'POST', '/protocols', { form: [{ field: 'files', name: 'a.py', value: py }, { field: 'files', name: 'd.csv', value: 'a,b\n' }, { field: 'runTimeParameterValues', value: '{"reps":2}' }] });
    assert.equal(up.status, 201);
    const again = await call(c, runs, 'POST', '/protocols', { form: [{ field: 'files', name: 'a.py', value: py }, { field: 'files', name: 'd.csv', value: 'a,b\n' }, { field: 'runTimeParameterValues', value: '{"reps":2}' }] });
    assert.equal(again.status, 200);
    assert.equal(again.body.data.id, up.body.data.id);
    const pid = up.body.data.id;
    await call(c, runs, 'GET', `/protocols/${pid}/analyses`);
    await wait(40);
    const an = await call(c, runs, 'GET', `/protocols/${pid}/analyses`);
    assert.equal(an.body.data[0].result, 'ok');
    await call(c, runs, 'GET', `/protocols/${pid}`);
    const run = await call(c, runs, 'POST', '/runs', { json: { data: { protocolId: pid, runTimeParameterValues: { reps: 3 } } } });
    assert.equal(run.status, 201);
    const rid = run.body.data.id;
    await call(c, runs, 'POST', `/runs/${rid}/actions`, { json: { data: { actionType: 'play' } } });
    assert.equal((await call(c, runs, 'POST', '/runs', { json: { data: { protocolId: pid } } })).status, 409);
    assert.equal((await call(c, runs, 'DELETE', `/runs/${rid}`)).status, 409);
    await call(c, runs, 'GET', `/runs/${rid}/commands?pageLength=1`);
    await call(c, runs, 'POST', `/runs/${rid}/actions`, { json: { data: { actionType: 'pause' } } });
    await call(c, runs, 'POST', `/runs/${rid}/actions`, { json: { data: { actionType: 'play' } } });
    await wait(120);
    const done = await call(c, runs, 'GET', `/runs/${rid}`);
    assert.equal(done.body.data.status, 'succeeded');
    assert.equal((await call(c, runs, 'POST', `/runs/${rid}/actions`, { json: { data: { actionType: 'play' } } })).status, 409);
    assert.equal((await call(c, runs, 'POST', `/runs/${rid}/actions`, { json: { data: { actionType: 'jump' } } })).status, 422);
    assert.equal((await call(c, runs, 'DELETE', `/protocols/${pid}`)).status, 409);
    await call(c, runs, 'GET', '/runs?pageLength=5');
    assert.equal((await call(c, runs, 'DELETE', `/runs/${rid}`)).status, 200);
    assert.equal((await call(c, runs, 'DELETE', `/protocols/${pid}`)).status, 200);
    assert.equal((await call(c, runs, 'GET', `/runs/${rid}`)).status, 404);
    assert.equal((await call(c, runs, 'POST', '/runs', { json: { data: { protocolId: 'nope' } } })).status, 404);
    // a failing protocol: failed with an ErrorOccurrence; a stop
    const bad = await call(c, runs, 'POST', '/protocols', { form: [{ field: 'files', name: 'b.py', value: '# sim-steps: 2\n# SIM_RUN_ERROR\n' }] });
    await wait(40);
    const r2 = await call(c, runs, 'POST', '/runs', { json: { data: { protocolId: bad.body.data.id } } });
    await call(c, runs, 'POST', `/runs/${r2.body.data.id}/actions`, { json: { data: { actionType: 'play' } } });
    await wait(80);
    const failed = await call(c, runs, 'GET', `/runs/${r2.body.data.id}`);
    assert.equal(failed.body.data.status, 'failed');
    assert.equal(failed.body.data.errors[0].errorType, 'ExceptionInProtocolError');
    const badFiles = await call(c, runs, 'POST', '/protocols', { form: [{ field: 'files', name: 'x.exe', value: 'MZ' }] });
    assert.equal(badFiles.status, 422);
    const analysisBad = await call(c, runs, 'POST', '/protocols', { form: [{ field: 'files', name: 'c.py', value: '# SIM_ANALYSIS_ERROR\n' }] });
    await wait(40);
    const an2 = await call(c, runs, 'GET', `/protocols/${analysisBad.body.data.id}/analyses`);
    assert.equal(an2.body.data[0].result, 'not-ok');
    assert.deepEqual(violations, [], violations.join('\n'));
    // The v8.1.0 spec does not declare DELETE /runs 409 RunNotIdle, which the reference observed (§2.8).
    assert.deepEqual([...new Set(c.undeclared)], ['409 DELETE /runs/{runId}']);
  });

  test('runs API (v8.1.0): /dataFiles, CSV and other runtime parameters, analyses, labwareOffsets on runs conform', async () => {
    const c = new Contract(specPath('runs'), 'ot-v8');
    const before = violations.length;
    const csv = 'well,volume_ul\nA1,10\nA2,20\n';
    const df = await call(c, runs, 'POST', '/dataFiles', { form: [{ field: 'file', name: 'map.csv', value: csv }] });
    assert.equal(df.status, 201);
    const same = await call(c, runs, 'POST', '/dataFiles', { form: [{ field: 'file', name: 'other-name.csv', value: csv }] });
    assert.equal(same.status, 200, 'identical content: the existing file');
    assert.equal(same.body.data.id, df.body.data.id);
    assert.equal((await call(c, runs, 'POST', '/dataFiles', { form: [{ field: 'file', name: 'map.txt', value: csv }] })).status, 422);
    assert.equal((await call(c, runs, 'POST', '/dataFiles', { form: [{ field: 'other', value: 'x' }] })).status, 422);
    const both = await call(c, runs, 'POST', '/dataFiles', { form: [{ field: 'file', name: 'm.csv', value: 'a\n' }, { field: 'filePath', value: '/data/m.csv' }] });
    assert.equal(both.body.errors[0].id, 'MultipleDataFileSources');
    runs.robotFiles.set('/data/on-robot.csv', Buffer.from('well\nB1\n'));
    assert.equal((await call(c, runs, 'POST', '/dataFiles', { form: [{ field: 'filePath', value: '/data/on-robot.csv' }] })).status, 201);
    const fid = df.body.data.id;
    assert.equal((await call(c, runs, 'GET', `/dataFiles/${fid}`)).body.data.name, 'map.csv');
    assert.equal((await call(c, runs, 'GET', '/dataFiles/nope')).status, 404);
    const dl = await fetch(`${runs.url}/dataFiles/${fid}/download`, { headers: { 'Opentrons-Version': '2' } });
    assert.equal(dl.status, 200);
    assert.equal(await dl.text(), csv);
    assert.equal((await fetch(`${runs.url}/dataFiles/${fid}`, { method: 'DELETE', headers: { 'Opentrons-Version': '2' } })).status, 405, '8.1.0 has no DELETE for data files');
    // GET /dataFiles: the spec says SimpleMultiBody[str], the server sends DataFile objects (see the simulator).
    const list = (await (await fetch(`${runs.url}/dataFiles`, { headers: { 'Opentrons-Version': '2' } })).json()) as Json;
    assert.ok(list.data.some((f: Json) => f.id === fid) && list.meta.totalLength >= 2);

    const py =
      "metadata = {'protocolName': 'csv'}\nrequirements = {'apiLevel': '2.20'}\n# sim-steps: csv\ndef add_parameters(parameters):\n" +
      '    parameters.add_csv_file(variable_name="plate_map", display_name="Plate map")\n' +
      '    parameters.add_int(variable_name="reps", display_name="Reps", default=1, minimum=1, maximum=4)\n' +
      '    parameters.add_float(variable_name="vol", display_name="Volume", default=5.5, minimum=1.0, maximum=10.0)\n' +
      '    parameters.add_bool(variable_name="dry", display_name="Dry", default=False)\n' +
      '    parameters.add_str(variable_name="mode", display_name="Mode", default="a", choices=[{"display_name": "A", "value": "a"}, {"display_name": "B", "value": "b"}])\n';
    const noFile = await call(c, runs, 'POST', '/protocols', { form: [{ field: 'files', name: 'csv.py', value: py }] });
    await wait(40);
    const pending = await call(c, runs, 'GET', `/protocols/${noFile.body.data.id}/analyses`);
    assert.equal(pending.body.data[0].result, 'parameter-value-required');
    assert.deepEqual(pending.body.data[0].runTimeParameters.map((p: Json) => p.type), ['csv_file', 'int', 'float', 'bool', 'str']);
    const re = await call(c, runs, 'POST', `/protocols/${noFile.body.data.id}/analyses`, { json: { data: { runTimeParameterValues: { reps: 2 }, runTimeParameterFiles: { plate_map: fid } } } });
    assert.equal(re.status, 201);
    await wait(40);
    const an = await call(c, runs, 'GET', `/protocols/${noFile.body.data.id}/analyses`);
    assert.equal(an.body.data[1].result, 'ok');
    assert.deepEqual(an.body.data[1].runTimeParameters[0].file, { id: fid, name: 'map.csv' });
    const up = await call(c, runs, 'POST', '/protocols', { form: [{ field: 'files', name: 'csv.py', value: py }, { field: 'runTimeParameterFiles', value: JSON.stringify({ plate_map: fid }) }] });
    assert.equal(up.status, 201);
    const pid = up.body.data.id;
    await wait(40);
    assert.equal((await call(c, runs, 'GET', `/protocols/${pid}/analyses`)).body.data[0].result, 'ok');
    await call(c, runs, 'GET', `/protocols/${pid}`);
    const wrongParam = await call(c, runs, 'POST', '/protocols', { form: [{ field: 'files', name: 'csv.py', value: py }, { field: 'runTimeParameterFiles', value: JSON.stringify({ platemap: fid }) }] });
    await wait(40);
    const notOk = await call(c, runs, 'GET', `/protocols/${wrongParam.body.data.id}/analyses`);
    assert.equal(notOk.body.data[0].result, 'not-ok');
    assert.match(notOk.body.data[0].errors[0].detail, /Parameter platemap is not defined/);
    assert.equal((await call(c, runs, 'POST', '/protocols', { form: [{ field: 'files', name: 'csv.py', value: py }, { field: 'runTimeParameterFiles', value: '{"plate_map":"nope"}' }] })).status, 422);
    const offsets = [{ definitionUri: 'opentrons/corning_96_wellplate_360ul_flat/2', location: { slotName: '3' }, vector: { x: 0.5, y: -0.25, z: 1.0 } }];
    const bad = await call(c, runs, 'POST', '/runs', { json: { data: { protocolId: pid, runTimeParameterValues: { reps: 9 } } } });
    assert.equal(bad.status, 500, 'a bad value: 500 ParameterValueError, as the robot answers');
    assert.equal(bad.body.errors[0].meta.type, 'ParameterValueError');
    assert.equal((await call(c, runs, 'POST', '/runs', { json: { data: { protocolId: pid, runTimeParameterFiles: { plate_map: 'nope' } } } })).status, 422);
    const run = await call(c, runs, 'POST', '/runs', { json: { data: { protocolId: pid, labwareOffsets: offsets, runTimeParameterValues: { reps: 3, mode: 'b' }, runTimeParameterFiles: { plate_map: fid } } } });
    assert.equal(run.status, 201);
    assert.equal(run.body.data.labwareOffsets[0].vector.z, 1.0);
    assert.ok(run.body.data.labwareOffsets[0].id);
    assert.deepEqual(run.body.data.runTimeParameters.find((p: Json) => p.variableName === 'plate_map').file, { id: fid, name: 'map.csv' });
    const files = await call(c, runs, 'GET', `/protocols/${pid}/dataFiles`);
    assert.deepEqual(files.body.data.map((f: Json) => f.id), [fid]);
    const rid = run.body.data.id;
    await call(c, runs, 'POST', `/runs/${rid}/actions`, { json: { data: { actionType: 'play' } } });
    await wait(150);
    assert.equal((await call(c, runs, 'GET', `/runs/${rid}`)).body.data.status, 'succeeded');
    await call(c, runs, 'GET', '/runs?pageLength=20');
    await call(c, runs, 'DELETE', `/runs/${rid}`);
    assert.deepEqual(violations.slice(before), [], violations.slice(before).join('\n'));
  });

  test('runs API (v8.1.0): every request the runner sends validates against the spec (CSV files, values, offsets, recent offsets)', async () => {
    const c = new Contract(specPath('runs'), 'ot-v8');
    const sim = await new OpentronsSim({ generation: 'runs', stepMs: 10, analysisMs: 20, settleMs: 5 }).start();
    const client = new OpentronsClient({ host: sim.url });
    try {
      const py = "metadata = {'protocolName': 'contract csv'}\nrequirements = {'apiLevel': '2.20'}\n# sim-steps: csv\ndef add_parameters(parameters):\n    parameters.add_csv_file(variable_name=\"plate_map\", display_name=\"Plate map\")\n    parameters.add_int(variable_name=\"reps\", display_name=\"Reps\", default=1, minimum=1, maximum=4)\n";
      const offsets = [{ definitionUri: 'opentrons/corning_96_wellplate_360ul_flat/2', location: { slotName: '3' }, vector: { x: 0.5, y: -0.25, z: 1 } }];
      const runner = () => new ProtocolRunner(client, { pollIntervalMs: 10, loadTimeoutMs: 5000 });
      const first = await runner().run({
        protocol: { name: 'contract.py', data: Buffer.from(py) },
        runTimeParameterFiles: { plate_map: { name: 'map.csv', data: Buffer.from('well\nA1\nA2\n') } },
        runTimeParameterValues: { reps: 2 },
        labwareOffsets: offsets,
        keep: true,
      });
      assert.equal(first.outcome, 'succeeded');
      const second = await runner().run({ protocol: { name: 'contract.py', data: Buffer.from(py) }, runTimeParameterFiles: { plate_map: { name: 'map.csv', data: Buffer.from('well\nA1\nA2\n') } }, offsetsFromRecentRun: true });
      assert.equal(second.outcome, 'succeeded');
      assert.equal(second.labwareOffsetsFromRun, first.runId);
      assert.equal(second.parameterFiles?.[0].reused, true);
      const sent = sim.requestLog;
      const kinds = new Set(sent.map((e) => `${e.method} ${c.template(e.method, e.path)}`));
      for (const k of ['POST /dataFiles', 'POST /protocols', 'POST /protocols/{protocolId}/analyses', 'POST /runs', 'POST /runs/{runId}/actions', 'GET /runs', 'GET /protocols/{protocolId}']) assert.ok(kinds.has(k), `${k} was exercised (${[...kinds].join(', ')})`);
      const requestViolations = sent.flatMap((e) => c.checkRequest(e));
      assert.deepEqual(requestViolations, [], requestViolations.join('\n'));
      console.log(`# ot2 contract: ${sent.length} requests of the runner checked against the v8.1.0 spec, ${requestViolations.length} violations`);
      // The checker does catch a bad request (so the 0 above means something).
      const wrong = c.checkRequest({ method: 'POST', path: '/runs', status: 0, time: 0, headers: {}, contentType: 'application/json', json: { data: { protocolId: 'x', labwareOffset: [] } } });
      assert.equal(wrong.length, 2, wrong.join('\n'));
      const wrongForm = c.checkRequest({ method: 'POST', path: '/dataFiles', status: 0, time: 0, headers: { 'opentrons-version': '2' }, contentType: 'multipart/form-data; boundary=x', form: { fields: {}, files: [{ field: 'files', name: 'a.csv' }] } });
      assert.equal(wrongForm.length, 1, wrongForm.join('\n'));
    } finally {
      client.close();
      await sim.close();
    }
  });

  test('sessions API (v4.7.0): flag, one-protocol rule, session life cycle, errors conform', async () => {
    const c = new Contract(specPath('sessions'), 'ot-v4');
    const h = await call(c, sessions, 'GET', '/health');
    assert.equal(h.body.robot_model, undefined);
    await call(c, sessions, 'GET', '/settings');
    const up = await call(c, sessions, 'POST', '/protocols', { form: [{ field: 'protocolFile', name: 'legacy.py', value: '# sim-steps: 2\n' }, { field: 'supportFiles', name: 'data.csv', value: 'a\n' }] });
    assert.equal(up.status, 201);
    assert.equal(up.body.data.id, 'legacy');
    assert.equal((await call(c, sessions, 'POST', '/protocols', { form: [{ field: 'protocolFile', name: 'other.py', value: '#\n' }] })).status, 403);
    assert.equal((await call(c, sessions, 'POST', '/protocols', { form: [{ field: 'protocolFile', name: 'legacy.py', value: '#\n' }] })).status, 403);
    sessions.setFeatureFlag(false);
    const off = await call(c, sessions, 'POST', '/sessions', { json: { data: { sessionType: 'protocol', createParams: { protocolId: 'legacy' } } } });
    assert.equal(off.status, 403);
    assert.match(off.body.errors[0].detail, /feature is disabled/);
    sessions.setFeatureFlag(true);
    const s = await call(c, sessions, 'POST', '/sessions', { json: { data: { sessionType: 'protocol', createParams: { protocolId: 'legacy' } } } });
    assert.equal(s.status, 201);
    assert.equal(s.body.data.details.currentState, 'stopped');
    const sid = s.body.data.id;
    const early = await call(c, sessions, 'POST', `/sessions/${sid}/commands/execute`, { json: { data: { command: 'protocol.startRun', data: {} } } });
    assert.equal(early.status, 403, 'no start while loading');
    await wait(450);
    assert.equal((await call(c, sessions, 'GET', `/sessions/${sid}`)).body.data.details.currentState, 'loaded');
    await call(c, sessions, 'POST', `/sessions/${sid}/commands/execute`, { json: { data: { command: 'protocol.startRun', data: {} } } });
    await call(c, sessions, 'POST', `/sessions/${sid}/commands/execute`, { json: { data: { command: 'protocol.pause', data: {} } } });
    await call(c, sessions, 'POST', `/sessions/${sid}/commands/execute`, { json: { data: { command: 'protocol.resume', data: {} } } });
    await wait(80);
    const fin = await call(c, sessions, 'GET', `/sessions/${sid}`);
    assert.equal(fin.body.data.details.currentState, 'finished');
    assert.ok(fin.body.data.details.events.some((e: Json) => e.event === 'command.COMMENT.start' && /Step 1 of 2/.test(e.params.text)));
    assert.equal((await call(c, sessions, 'POST', `/sessions/${sid}/commands/execute`, { json: { data: { command: 'protocol.pause', data: {} } } })).status, 403);
    await call(c, sessions, 'GET', '/sessions');
    await call(c, sessions, 'DELETE', `/sessions/${sid}`);
    await call(c, sessions, 'GET', '/protocols');
    assert.equal((await call(c, sessions, 'DELETE', '/protocols/legacy')).status, 200);
    const runsProbe = await fetch(sessions.url + '/runs', { headers: { 'Opentrons-Version': '2' } });
    assert.equal(runsProbe.status, 404, '4.x has no /runs');
    const noHeader = await fetch(sessions.url + '/health');
    assert.equal(noHeader.status, 422, 'Opentrons-Version is required');
    // 404/403 answers of 4.x are not declared in its spec; check the error shape against ErrorResponse
    const gone = await fetch(sessions.url + '/protocols/legacy', { method: 'DELETE', headers: { 'Opentrons-Version': '2' } });
    assert.equal(gone.status, 404);
    const body = (await gone.json()) as Json;
    assert.deepEqual(Object.keys(body.errors[0]).sort(), ['detail', 'id', 'title']);
    assert.deepEqual(violations, [], violations.join('\n'));
    // The v4.7.0 spec declares only 200/201/422; 403 and 404 are documented in the reference (§1.1–1.4).
    assert.ok([...new Set(c.undeclared)].every((u) => /^40[34] /.test(u)), c.undeclared.join());
    assert.ok(checked > 30);
  });
});
