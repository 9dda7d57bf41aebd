/**
 * The bioAF client against the bioAF simulator over real HTTP: upsert (create, update, unchanged,
 * race on create, retry with the same Idempotency-Key), refusals before any request, lookups,
 * paging, and the simulator's own contract points (strict create, 422 on a reused key, auth).
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BioafSim, DEFAULT_BIOAF_API_KEY, pythonJsonDumps } from '../simulator/bioaf';
import { apiBaseFromUrl, BioafClient, idempotencyKey } from '../nodes/clients/bioaf/client';
import { LabError } from '../nodes/lib/http/errors';

const OTHER_KEY = 'biokey_SIMotherKEY2.anotherfakekeyanotherfakekey0000';

describe('bioAF client ↔ simulator', () => {
  let sim: BioafSim;
  let client: BioafClient;

  before(async () => {
    sim = await new BioafSim({ apiKeys: [DEFAULT_BIOAF_API_KEY, { key: OTHER_KEY, scopes: ['projects:view'] }] }).start();
    client = new BioafClient({ url: sim.url, apiKey: DEFAULT_BIOAF_API_KEY, timeoutMs: 3000, backoff: { baseMs: 20, maxMs: 50 } });
  });
  afterEach(() => sim.clearFaults());
  after(async () => {
    client.close();
    await sim.close();
  });

  const writes = () => sim.requestLog.filter((e) => e.method === 'POST' || e.method === 'PATCH');

  test('the URL becomes the Integration API base', () => {
    assert.equal(apiBaseFromUrl('https://bioaf.example.org'), 'https://bioaf.example.org/api/v1/integrations');
    assert.equal(apiBaseFromUrl('https://bioaf.example.org/api/v1/integrations/'), 'https://bioaf.example.org/api/v1/integrations');
    assert.equal(apiBaseFromUrl('https://x.org/bioaf'), 'https://x.org/bioaf/api/v1/integrations');
    assert.throws(() => apiBaseFromUrl('ftp://x'), /must start with https/);
    assert.throws(() => new BioafClient({ url: sim.url, apiKey: 'sk_not_a_bioaf_key' }), /biokey_<prefix>\.<secret>/);
  });

  test('create, then unchanged (no request), then update with only what changed', async () => {
    sim.clearRequestLog();
    const created = await client.upsert('project', 'LIMS-P-1', { name: 'Atlas', description: 'first', custom_fields: { pi: 'Ada' } });
    assert.equal(created.action, 'created');
    assert.equal(created.record.external_id, 'LIMS-P-1');
    assert.match(String(created.record.code), /^biop-\d{4}$/);
    assert.deepEqual(created.record.custom_fields, [{ field_name: 'pi', field_value: 'Ada' }]);
    const post = writes()[0];
    assert.equal(post.method, 'POST');
    assert.match(post.idempotencyKey!, /^labwire-[0-9a-f]{40}$/);

    sim.clearRequestLog();
    const same = await client.upsert('project', 'LIMS-P-1', { name: 'Atlas', description: 'first', custom_fields: { pi: 'Ada' } });
    assert.equal(same.action, 'unchanged');
    assert.equal(same.record.id, created.record.id);
    assert.equal(writes().length, 0, 'nothing changed → no write');

    sim.clearRequestLog();
    const upd = await client.upsert('project', 'LIMS-P-1', { name: 'Atlas', description: 'second', custom_fields: { pi: 'Ada', grant: 'G-7' } });
    assert.equal(upd.action, 'updated');
    assert.deepEqual(upd.changed, ['description', 'custom_fields.grant']);
    const patch = sim.requestLog.find((e) => e.method === 'PATCH')!;
    assert.equal(patch.path, `/api/v1/integrations/projects/${created.record.id}`);
    assert.equal(upd.record.description, 'second');
    assert.deepEqual(sim.getRecord('project', created.record.id)!.custom_fields, [
      { field_name: 'pi', field_value: 'Ada' },
      { field_name: 'grant', field_value: 'G-7' },
    ]);
    assert.equal(sim.records('project').filter((p) => p.external_id === 'LIMS-P-1').length, 1);
  });

  test('experiments under a project by LIMS id, samples within their experiment', async () => {
    await client.upsert('project', 'P-2', { name: 'Parent' });
    const exp = await client.upsert('experiment', 'E-2', { name: 'Run 2', project_external_id: 'P-2', variables_json: { temp: 37 } });
    assert.equal(exp.action, 'created');
    assert.equal(exp.record.status, 'registered');
    const s1 = await client.upsert('sample', 'S-1', { experiment_external_id: 'E-2', organism: 'mouse', cell_count: 1000, assay: 'scrna' });
    assert.equal(s1.action, 'created');
    assert.equal(s1.record.experiment_id, exp.record.id);
    // The same sample id in another experiment is another sample.
    const exp3 = await client.upsert('experiment', 'E-3', { name: 'Run 3' });
    const s1b = await client.upsert('sample', 'S-1', { experiment_id: exp3.record.id, organism: 'human' });
    assert.equal(s1b.action, 'created');
    assert.notEqual(s1b.record.id, s1.record.id);
    const again = await client.upsert('experiment', 'E-2', { name: 'Run 2', project_external_id: 'P-2', variables_json: { temp: 37 } });
    assert.equal(again.action, 'unchanged', 'object fields compare by value; same project is no change');
    const moved = client.upsert('experiment', 'E-2', { name: 'Run 2', project_external_id: 'LIMS-P-1' });
    await assert.rejects(moved, /"project_external_id" is immutable/);
  });

  test('a create that loses a race (409) looks the record up again and PATCHes it', async () => {
    sim.beforeNext('POST', /\/projects$/, () => {
      sim.putRecord('project', { external_id: 'P-race', name: 'written by someone else' });
    });
    sim.clearRequestLog();
    const r = await client.upsert('project', 'P-race', { name: 'ours' });
    assert.equal(r.action, 'updated');
    assert.equal(r.raced, true);
    assert.equal(r.record.name, 'ours');
    assert.deepEqual(
      sim.requestLog.map((e) => `${e.method} ${e.status}`),
      ['GET 404', 'POST 409', 'GET 200', 'PATCH 200'],
    );
    assert.equal(sim.records('project').filter((p) => p.external_id === 'P-race').length, 1);
  });

  test('a create whose answer was lost is retried with the same Idempotency-Key and replayed', async () => {
    sim.injectFault({ kind: 500, method: 'POST', path: /\/projects$/, afterCommit: true });
    sim.clearRequestLog();
    const r = await client.upsert('project', 'P-retry', { name: 'once only' });
    assert.equal(r.action, 'created');
    assert.equal(r.replayed, true);
    const posts = sim.requestLog.filter((e) => e.method === 'POST');
    assert.equal(posts.length, 2);
    assert.equal(posts[0].idempotencyKey, posts[1].idempotencyKey);
    assert.equal(posts[0].status, 500);
    assert.equal(posts[1].status, 201);
    assert.equal(posts[1].replayed, true);
    assert.equal(sim.records('project').filter((p) => p.external_id === 'P-retry').length, 1, 'one record');
    // The key is derived from the request, so a process that crashed and retries sends it again.
    assert.equal(idempotencyKey('project', { external_id: 'P-retry', name: 'once only' }), posts[0].idempotencyKey);
  });

  test('a crash after the create was sent: the retry (new process, same message) finds it — one record', async () => {
    const impatient = new BioafClient({ url: sim.url, apiKey: DEFAULT_BIOAF_API_KEY, timeoutMs: 2000, retries: 0 });
    sim.injectFault({ kind: 'reset', method: 'POST', path: /\/projects$/, afterCommit: true });
    await assert.rejects(impatient.upsert('project', 'P-crash', { name: 'n' }), (e: LabError) => e.code === 'NETWORK');
    impatient.close();
    const restarted = new BioafClient({ url: sim.url, apiKey: DEFAULT_BIOAF_API_KEY, timeoutMs: 2000 });
    const r = await restarted.upsert('project', 'P-crash', { name: 'n' });
    restarted.close();
    assert.equal(r.action, 'unchanged');
    assert.equal(sim.records('project').filter((p) => p.external_id === 'P-crash').length, 1);
  });

  test('a replayed create whose record is gone meanwhile is created afresh under a new key', async () => {
    const first = await client.upsert('project', 'P-gone', { name: 'short-lived' });
    sim.removeRecord('project', first.record.id);
    sim.clearRequestLog();
    const again = await client.upsert('project', 'P-gone', { name: 'short-lived' });
    assert.equal(again.action, 'created');
    assert.notEqual(again.record.id, first.record.id);
    assert.deepEqual(sim.requestLog.map((e) => `${e.method} ${e.status}${e.replayed ? ' replayed' : ''}`), ['GET 404', 'POST 201 replayed', 'GET 404', 'POST 201']);
    assert.equal(sim.records('project').filter((p) => p.external_id === 'P-gone').length, 1);
  });

  test('the simulator answers 422 when a key is reused with another body', async () => {
    const post = (body: unknown) =>
      fetch(`${sim.apiBase}/projects`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${DEFAULT_BIOAF_API_KEY}`, 'Content-Type': 'application/json', 'Idempotency-Key': 'k-422' },
        body: JSON.stringify(body),
      });
    const a = await post({ external_id: 'P-k', name: 'A' });
    assert.equal(a.status, 201);
    const b = await post({ name: 'A', external_id: 'P-k', code: 'ignored' }); // key order and unknown fields do not matter
    assert.equal(b.status, 201);
    assert.equal(b.headers.get('idempotency-replayed'), 'true');
    const c = await post({ external_id: 'P-k', name: 'B' });
    assert.equal(c.status, 422);
    assert.deepEqual(await c.json(), { detail: 'idempotency_key_reused_with_different_body' });
    const d = await fetch(`${sim.apiBase}/projects`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${DEFAULT_BIOAF_API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ external_id: 'P-k', name: 'A' }),
    });
    assert.equal(d.status, 409);
    assert.deepEqual(await d.json(), { detail: 'external_id_already_exists' });
  });

  test('read-only and immutable fields are refused before any request, naming the field', async () => {
    sim.clearRequestLog();
    await assert.rejects(client.upsert('experiment', 'E-x', { name: 'n', status: 'sequencing' }), (e: LabError) => e.code === 'BAD_INPUT' && /"status"/.test(e.message));
    await assert.rejects(client.upsert('sample', 'S-x', { experiment_id: 1, qc_status: 'pass' }), /"qc_status" cannot be written/);
    await assert.rejects(client.upsert('project', 'P-x', { name: 'n', external_id: 'P-other' }), /"external_id" is immutable/);
    await assert.rejects(client.upsert('project', 'P-x', { name: 'n', code: 'biop-0001' }), /"code" cannot be written/);
    await assert.rejects(client.upsert('project', 'P-x', { nmae: 'typo' }), /no writable field "nmae"/);
    await assert.rejects(client.upsert('sample', 'S-x', { experiment_id: 1, organism: 'x'.repeat(101) }), /"organism" is 101 characters; bioAF takes at most 100/);
    await assert.rejects(client.upsert('sample', 'S-x', { experiment_id: 1, assay: 'wgs' }), /"assay" must be one of bulk_rna, scrna, other/);
    await assert.rejects(client.upsert('sample', 'S-x', { organism: 'mouse' }), /experiment_id/);
    assert.equal(sim.requestLog.length, 0, 'no request was sent');
    // Found only after the lookup: clearing a value, and a create without its required field.
    await client.upsert('project', 'P-clear', { name: 'n', description: 'keep' });
    sim.clearRequestLog();
    await assert.rejects(client.upsert('project', 'P-clear', { description: null }), /"description" cannot be cleared/);
    await assert.rejects(client.upsert('project', 'P-new-noname', { description: 'd' }), /needs "name"/);
    assert.equal(writes().length, 0, 'no write was sent');
  });

  test('lookup by external id, including ids with a slash (list filter fallback)', async () => {
    await client.upsert('project', 'LAB/2026/7', { name: 'slashed' });
    const found = await client.findByExternal('project', 'LAB/2026/7');
    assert.equal(found?.name, 'slashed');
    assert.equal(await client.findByExternal('project', 'nope'), undefined);
  });

  test('paging through a list with cursors, newest first', async () => {
    const exp = await client.upsert('experiment', 'E-page', { name: 'paging' });
    for (let i = 0; i < 7; i++) await client.upsert('sample', `PG-${i}`, { experiment_id: exp.record.id, organism: i % 2 ? 'mouse' : 'human' });
    const p1 = await client.list('sample', { experiment_id: exp.record.id }, { limit: 3 });
    assert.deepEqual(p1.items.map((s) => s.external_id), ['PG-6', 'PG-5', 'PG-4']);
    assert.equal(p1.next_cursor, String(p1.items[2].id));
    const p2 = await client.list('sample', { experiment_id: exp.record.id }, { limit: 3, cursor: p1.next_cursor });
    assert.deepEqual(p2.items.map((s) => s.external_id), ['PG-3', 'PG-2', 'PG-1']);
    const p3 = await client.list('sample', { experiment_id: exp.record.id }, { limit: 3, cursor: p2.next_cursor });
    assert.deepEqual(p3.items.map((s) => s.external_id), ['PG-0']);
    assert.equal(p3.next_cursor, null);
    const all = await client.listAll('sample', { experiment_id: exp.record.id, q: 'mouse' }, { limit: 2 });
    assert.deepEqual(all.items.map((s) => s.external_id), ['PG-5', 'PG-3', 'PG-1']);
    assert.equal(all.pages, 2);
    await assert.rejects(client.list('sample', {}, { cursor: 'abc' }), (e: LabError) => e.status === 400 && /invalid_cursor/.test(e.message));
    await assert.rejects(client.list('sample', {}, { limit: 500 }), /page size must be 1–200/);
  });

  test('a rejected key is a clear 401 / 403 with bioAF\'s own words', async () => {
    const bad = new BioafClient({ url: sim.url, apiKey: 'biokey_FAKEfakeFAKE.fakefakefakefakefakefakefakefake', timeoutMs: 2000 });
    await assert.rejects(bad.findByExternal('project', 'P-2'), (e: LabError) => {
      assert.equal(e.status, 401);
      assert.match(e.message, /Invalid API key .*check the API key/);
      assert.doesNotMatch(e.message, /fakefakefake/);
      return true;
    });
    const scoped = new BioafClient({ url: sim.url, apiKey: OTHER_KEY, timeoutMs: 2000 });
    await assert.rejects(scoped.upsert('project', 'P-scope', { name: 'x' }), (e: LabError) => e.status === 403 && /key_scope_missing/.test(e.message));
    const noAuth = await fetch(`${sim.apiBase}/projects`);
    assert.deepEqual(await noAuth.json(), { detail: 'Missing or invalid authorization header' });
    const jwt = await fetch(`${sim.apiBase}/projects`, { headers: { Authorization: 'Bearer eyJhbGciOi.x.y' } });
    assert.deepEqual(await jwt.json(), { detail: 'API key required' });
    bad.close();
    scoped.close();
  });

  test('PATCH never clears with null, status writes are 400, samples by-external need experiment_id', async () => {
    const h = { Authorization: `Bearer ${DEFAULT_BIOAF_API_KEY}`, 'Content-Type': 'application/json' };
    const exp = await client.upsert('experiment', 'E-raw', { name: 'raw', description: 'kept' });
    const p = await fetch(`${sim.apiBase}/experiments/${exp.record.id}`, { method: 'PATCH', headers: h, body: JSON.stringify({ description: null, external_id: 'ignored' }) });
    assert.equal(p.status, 200);
    const body = (await p.json()) as Record<string, unknown>;
    assert.equal(body.description, 'kept');
    assert.equal(body.external_id, 'E-raw');
    const s = await fetch(`${sim.apiBase}/experiments/${exp.record.id}`, { method: 'PATCH', headers: h, body: JSON.stringify({ status: 'complete' }) });
    assert.equal(s.status, 400);
    assert.deepEqual(await s.json(), { detail: 'status_writes_not_permitted' });
    const q = await fetch(`${sim.apiBase}/samples/by-external/S-1`, { headers: h });
    assert.equal(q.status, 422);
  });

  test('webhook bodies are Python json.dumps bytes', () => {
    assert.equal(pythonJsonDumps({ b: [1, 'é'], a: null }), '{"a": null, "b": [1, "\\u00e9"]}');
  });
});
