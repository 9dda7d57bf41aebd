/**
 * Calls to a real Node-RED's admin API from tests: plain HTTP, JSON in and out, an optional
 * bearer token (adminAuth), and logging in with a user name and password for such a token.
 */
import * as http from 'http';
import assert from 'node:assert/strict';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const bcrypt = require('bcryptjs') as { hashSync(s: string, rounds: number): string };

/** The password of both test users below (a test value, not a secret). */
export const TEST_PASSWORD = 'secret-pass';

/** settings.adminAuth with two users: `ops` may do everything, `viewer` may only read. */
export function twoUserAdminAuth(): Record<string, unknown> {
  const hash = bcrypt.hashSync(TEST_PASSWORD, 4);
  return {
    type: 'credentials',
    users: [
      { username: 'ops', password: hash, permissions: '*' },
      { username: 'viewer', password: hash, permissions: 'read' },
    ],
  };
}

export interface Answer {
  status: number;
  body: any;
}

export function adminCall(url: string, o: { method?: string; token?: string; headers?: Record<string, string>; body?: unknown } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    if (data) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(data.length) });
    const req = http.request(url, { method: o.method ?? 'GET', headers }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** Logs in as `username` (adminAuth type credentials) and returns the access token. */
export async function adminToken(redUrl: string, username: string, password: string, scope: string): Promise<string> {
  const r = await adminCall(`${redUrl}/auth/token`, { method: 'POST', body: { client_id: 'node-red-admin', grant_type: 'password', scope, username, password } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.access_token;
}
