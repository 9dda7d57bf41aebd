/**
 * The genie-command dialog's admin routes under adminAuth, in a real Node-RED process against the
 * Genie simulator: a value typed into an open dialog (URL and token, not deployed yet) makes
 * Node-RED call that URL with that token, so it needs `genie-tenant.write` as well as read; a
 * deployed tenant by id needs only read. Without a login, or without the permission: Node-RED's 401.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import { startLabSimulator, LabSimulator, DEFAULT_GENIE_TOKEN, GENIE_SEED } from '../simulator';
import { freePort, startNodeRed, NodeRedProcess } from '../scripts/node-red-process';
import { tempDir } from './support/nodered';
import { adminCall, adminToken, twoUserAdminAuth, TEST_PASSWORD } from './support/admin-http';


const call = (url: string, headers: Record<string, string> = {}) => adminCall(url, { headers });

describe('Genie dialog routes with adminAuth', () => {
  let sim: LabSimulator;
  let red: NodeRedProcess;
  let viewer = '';
  let ops = '';

  before(async () => {
    sim = await startLabSimulator();
    red = await startNodeRed({
      userDir: path.join(tempDir('genie-auth'), 'user'),
      port: await freePort(),
      settings: { adminAuth: twoUserAdminAuth() },
    });
    const token = (username: string, scope: string) => adminToken(red.url, username, TEST_PASSWORD, scope);
    viewer = await token('viewer', 'read');
    ops = await token('ops', '*');
    await red.deploy(
      [{ id: 'gt-deployed', type: 'genie-tenant', name: 'genie', url: sim.genie.apiBase, timeout: 10, credentials: { token: DEFAULT_GENIE_TOKEN } }],
      { authorization: `Bearer ${ops}` },
    );
  });
  after(async () => {
    await red?.stop();
    await sim?.close();
  });

  const typed = () => `${red.url}/labwire/genie/instruments?url=${encodeURIComponent(sim.genie.apiBase)}`;

  test('typed-in URL and token: refused without a login and for a read-only user (nothing sent), listed for a user who may write', async () => {
    const before = sim.genie.counters.requests;
    assert.equal((await call(typed(), { 'X-Genie-Token': DEFAULT_GENIE_TOKEN })).status, 401);
    // Node-RED's own permission check answers 401 (not 403) when a logged-in user lacks the permission.
    const refused = await call(typed(), { 'X-Genie-Token': DEFAULT_GENIE_TOKEN, authorization: `Bearer ${viewer}` });
    assert.equal(refused.status, 401);
    assert.equal(sim.genie.counters.requests, before, 'nothing was sent to the typed-in URL');
    const allowed = await call(typed(), { 'X-Genie-Token': DEFAULT_GENIE_TOKEN, authorization: `Bearer ${ops}` });
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
    assert.ok(Array.isArray(allowed.body) && allowed.body.some((i: { uid: string }) => i.uid === GENIE_SEED.shaker), 'the shaker is listed');
  });

  test('the deployed tenant by id: a read-only user may list (nothing typed, nothing sent elsewhere)', async () => {
    const r = await call(`${red.url}/labwire/genie/instruments?tenant=gt-deployed`, { authorization: `Bearer ${viewer}` });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(r.body.some((i: { uid: string }) => i.uid === GENIE_SEED.shaker));
    // The dialog's stored-password placeholder is not a typed token: still read-only is enough.
    const placeholder = await call(`${red.url}/labwire/genie/instruments?tenant=gt-deployed`, { authorization: `Bearer ${viewer}`, 'X-Genie-Token': '__PWRD__' });
    assert.equal(placeholder.status, 200);
    assert.equal((await call(`${red.url}/labwire/genie/instruments?tenant=gt-deployed`)).status, 401);
  });
});
