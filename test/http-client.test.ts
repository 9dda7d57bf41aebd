/**
 * The shared HTTP client over real HTTP on 127.0.0.1: retries only where safe, 429 / 503
 * handling, the per-tenant governor, timeouts, HTML error pages, proxies and secret redaction.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'http';
import { AddressInfo } from 'net';
import { Readable } from 'stream';
import { HttpClient } from '../nodes/lib/http/client';
import { LabError, redact, registerSecret } from '../nodes/lib/http/errors';
import { bulkLimit, forgetGovernors, governorFor, RateGovernor } from '../nodes/lib/http/governor';
import { BenchlingClient } from '../nodes/clients/benchling/client';
import { DEFAULT_API_KEY, SEED, startLabSimulator } from '../simulator';
import { tempDir } from './support/nodered';
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

/** A loopback server whose answers a test scripts, counting requests per path. */
async function scriptedServer(handler: Handler): Promise<{ url: string; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server = http.createServer((req, res) => {
    n++;
    req.resume();
    req.on('end', () => handler(req, res, n));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    count: () => n,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const fast = { baseMs: 10, maxMs: 40 };

describe('HttpClient', () => {
  test('retries a GET after 500 and succeeds', async () => {
    const srv = await scriptedServer((_req, res, n) => {
      res.writeHead(n < 3 ? 500 : 200, { 'content-type': 'application/json' });
      res.end(n < 3 ? '{"error":{"message":"boom"}}' : '{"ok":true}');
    });
    const c = new HttpClient({ service: 'Test', baseUrl: srv.url, backoff: fast });
    const res = await c.request<{ ok: boolean }>({ method: 'GET', path: '/x' });
    assert.equal(res.data.ok, true);
    assert.equal(srv.count(), 3);
    c.close();
    await srv.close();
  });

  test('a request without body sends no Content-Type (axios would say x-www-form-urlencoded)', async () => {
    const seen: Array<{ method: string; ct?: string }> = [];
    const srv = await scriptedServer((req, res) => {
      seen.push({ method: req.method!, ct: req.headers['content-type'] });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    const c = new HttpClient({ service: 'Test', baseUrl: srv.url, backoff: fast });
    await c.request({ method: 'POST', path: '/x:abort-upload' });
    await c.request({ method: 'GET', path: '/x' });
    await c.request({ method: 'POST', path: '/x', json: { a: 1 } });
    assert.deepEqual(seen, [{ method: 'POST', ct: undefined }, { method: 'GET', ct: undefined }, { method: 'POST', ct: 'application/json' }]);
    c.close();
    await srv.close();
  });

  test('close() while held: the answer in flight still arrives; without a hold it is cut off', async () => {
    const srv = await scriptedServer((_req, res) => {
      setTimeout(() => {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{"id":"c1"}');
      }, 150);
    });
    const c = new HttpClient({ service: 'Test', baseUrl: srv.url, backoff: fast });
    const release = c.hold();
    const held = c.request<{ id: string }>({ method: 'POST', path: '/commands', json: {} });
    await new Promise((r) => setTimeout(r, 40));
    c.close(); // deferred: the hold keeps the connection
    assert.equal((await held).data.id, 'c1');
    // still usable until released (the kill of what was created)
    assert.equal((await c.request<{ id: string }>({ method: 'POST', path: '/kill', json: {} })).status, 201);
    release();
    release(); // twice: harmless

    const d = new HttpClient({ service: 'Test', baseUrl: srv.url, backoff: fast });
    const cut = d.request({ method: 'POST', path: '/commands', json: {} });
    await new Promise((r) => setTimeout(r, 40));
    d.close();
    await assert.rejects(cut, (e: LabError) => e.code === 'NETWORK');
    await srv.close();
  });

  test('does not retry a POST after 500 (it may have been written)', async () => {
    const srv = await scriptedServer((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"internal","type":"api_error"}}');
    });
    const c = new HttpClient({ service: 'Test', baseUrl: srv.url, backoff: fast });
    await assert.rejects(c.request({ method: 'POST', path: '/blobs', json: {} }), (err: LabError) => {
      assert.equal(err.code, 'HTTP');
      assert.equal(err.status, 500);
      return true;
    });
    assert.equal(srv.count(), 1);
    c.close();
    await srv.close();
  });

  test('retries a POST after 429, waiting for x-rate-limit-reset, and reports the wait', async () => {
    const srv = await scriptedServer((_req, res, n) => {
      if (n === 1) {
        res.writeHead(429, { 'content-type': 'application/json', 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': '0' });
        return res.end('{"error":{"message":"Rate limit exceeded.","type":"invalid_request_error"}}');
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"id":"b1"}');
    });
    const waits: string[] = [];
    const c = new HttpClient({ service: 'Test', baseUrl: srv.url, backoff: fast });
    const res = await c.request<{ id: string }>({ method: 'POST', path: '/blobs', json: {}, onWait: (r) => waits.push(r) });
    assert.equal(res.data.id, 'b1');
    assert.equal(srv.count(), 2);
    assert.deepEqual(waits, ['waiting for rate limit']);
    c.close();
    await srv.close();
  });

  test('gives up on a 429 storm after its retries with RATE_LIMITED', async () => {
    const srv = await scriptedServer((_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"Rate limit exceeded.","type":"invalid_request_error","userMessage":"Rate limit exceeded."}}');
    });
    const c = new HttpClient({ service: 'Test', baseUrl: srv.url, backoff: fast, rateLimitRetries: 3 });
    await assert.rejects(c.request({ method: 'GET', path: '/x' }), (err: LabError) => err.code === 'RATE_LIMITED' && /429/.test(err.message));
    assert.equal(srv.count(), 4);
    c.close();
    await srv.close();
  });

  test('times out a server that never answers', async () => {
    const srv = await scriptedServer(() => undefined);
    const c = new HttpClient({ service: 'Test', baseUrl: srv.url, backoff: fast, timeoutMs: 200, retries: 1 });
    const t0 = Date.now();
    await assert.rejects(c.request({ method: 'GET', path: '/hang' }), (err: LabError) => err.code === 'TIMEOUT');
    assert.equal(srv.count(), 2, 'a GET is retried once after the timeout');
    assert.ok(Date.now() - t0 < 5000);
    c.close();
    await srv.close();
  });

  test('a body trickled one byte at a time ends in TIMEOUT: the deadline covers the whole body', async () => {
    // A slow-loris: headers at once, then a byte every 100 ms, never idle long enough for a socket timeout.
    const timers: NodeJS.Timeout[] = [];
    const srv = await scriptedServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100000' });
      timers.push(setInterval(() => res.write(' '), 100));
    });
    const c = new HttpClient({ service: 'Test', baseUrl: srv.url, backoff: fast, timeoutMs: 500, retries: 1 });
    let t0 = Date.now();
    await assert.rejects(c.request({ method: 'GET', path: '/slow' }), (err: LabError) => {
      assert.equal(err.code, 'TIMEOUT');
      assert.equal(err.key, 'http.timeout');
      assert.match(err.message, /GET \/slow: no answer within 0.5 s/);
      return true;
    });
    // (1 + 1 retry) × 0.5 s + one backoff (≤ 50 ms), with room for a loaded machine.
    assert.ok(Date.now() - t0 < 4000, `took ${Date.now() - t0} ms`);
    assert.equal(srv.count(), 2, 'a GET is retried once after the timeout');
    t0 = Date.now();
    await assert.rejects(c.request({ method: 'POST', path: '/slow', json: {} }), (err: LabError) => err.code === 'TIMEOUT');
    assert.equal(srv.count(), 3, 'a POST is not retried after a timeout (it may have been written)');
    assert.ok(Date.now() - t0 < 3000);
    timers.forEach(clearInterval);
    c.close();
    await srv.close();
  });

  test("the caller's abort during a trickled body is CANCELLED, not TIMEOUT", async () => {
    const timers: NodeJS.Timeout[] = [];
    const srv = await scriptedServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100000' });
      timers.push(setInterval(() => res.write(' '), 50));
    });
    const c = new HttpClient({ service: 'Test', baseUrl: srv.url, backoff: fast, timeoutMs: 5000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('node closed')), 300);
    const t0 = Date.now();
    await assert.rejects(c.request({ method: 'GET', path: '/slow', signal: ac.signal }), (err: LabError) => err.code === 'CANCELLED');
    assert.ok(Date.now() - t0 < 3000);
    assert.equal(srv.count(), 1);
    timers.forEach(clearInterval);
    c.close();
    await srv.close();
  });

  test('a streamed download that stalls ends in TIMEOUT; one that keeps flowing is not cut off', async () => {
    const timers: NodeJS.Timeout[] = [];
    const srv = await scriptedServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      if (req.url === '/stall') {
        res.write(Buffer.alloc(1000, 1)); // some bytes, then nothing
        return;
      }
      // 12 chunks 100 ms apart: 1.2 s in all, longer than the 400 ms timeout, but never idle that long.
      let n = 0;
      const t = setInterval(() => (++n < 12 ? res.write(Buffer.alloc(100, 2)) : (clearInterval(t), res.end(Buffer.alloc(100, 2)))), 100);
      timers.push(t);
    });
    const c = new HttpClient({ service: 'Test', baseUrl: srv.url, backoff: fast, timeoutMs: 400 });
    const flowing = await c.request<NodeJS.ReadableStream>({ method: 'GET', path: '/flow', responseType: 'stream' });
    let size = 0;
    for await (const chunk of flowing.data) size += (chunk as Buffer).length;
    assert.equal(size, 1200);

    const t0 = Date.now();
    const stalled = await c.request<NodeJS.ReadableStream>({ method: 'GET', path: '/stall', responseType: 'stream' });
    await assert.rejects(
      (async () => {
        for await (const _chunk of stalled.data) void _chunk;
      })(),
      (err: LabError) => {
        assert.equal(err.code, 'TIMEOUT');
        assert.equal(err.key, 'http.stalled');
        return true;
      },
    );
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    timers.forEach(clearInterval);
    c.close();
    await srv.close();
  });

  test('a streamed upload that stops sending ends in TIMEOUT after timeout + length at the minimum rate', async () => {
    const srv = await scriptedServer((_req, res) => res.end('{}'));
    const c = new HttpClient({ service: 'Test', baseUrl: srv.url, backoff: fast, timeoutMs: 300, retries: 0 });
    const t0 = Date.now();
    await assert.rejects(
      c.request({
        method: 'POST',
        path: '/upload',
        // 32 KiB promised, nothing ever sent: budget 0.3 s + 0.5 s at 64 KiB/s.
        body: () => ({ stream: new Readable({ read() {} }), length: 32 * 1024, contentType: 'application/octet-stream' }),
      }),
      (err: LabError) => err.code === 'TIMEOUT' && /within 0.8 s/.test(err.message),
    );
    assert.ok(Date.now() - t0 < 4000, `took ${Date.now() - t0} ms`);
    c.close();
    await srv.close();
  });

  test("a request's own timeoutMs (e.g. genie's kill) sets its deadline, not the client's", async () => {
    const srv = await scriptedServer(() => undefined);
    const c = new HttpClient({ service: 'Test', baseUrl: srv.url, backoff: fast, timeoutMs: 60_000, retries: 0 });
    const t0 = Date.now();
    await assert.rejects(c.request({ method: 'POST', path: '/kill', idempotent: true, timeoutMs: 300 }), (err: LabError) => err.code === 'TIMEOUT' && /within 0.3 s/.test(err.message));
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    c.close();
    await srv.close();
  });

  test('an HTML error page becomes a readable message', async () => {
    const srv = await scriptedServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>');
    });
    const c = new HttpClient({ service: 'Test', baseUrl: srv.url, backoff: fast, retries: 0 });
    await assert.rejects(c.request({ method: 'GET', path: '/x' }), (err: LabError) => {
      assert.match(err.message, /HTTP 502: HTML \("502 Bad Gateway"\)/);
      return true;
    });
    c.close();
    await srv.close();
  });

  test('a 200 with HTML instead of JSON is BAD_RESPONSE', async () => {
    const srv = await scriptedServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html><title>Login</title></html>');
    });
    const c = new HttpClient({ service: 'Test', baseUrl: srv.url });
    await assert.rejects(c.request({ method: 'GET', path: '/x' }), (err: LabError) => err.code === 'BAD_RESPONSE' && /Login/.test(err.message));
    c.close();
    await srv.close();
  });

  test('connection refused is retried, then reported as NETWORK', async () => {
    const srv = await scriptedServer(() => undefined);
    const url = srv.url;
    await srv.close();
    const c = new HttpClient({ service: 'Test', baseUrl: url, backoff: fast, retries: 2 });
    const waits: string[] = [];
    await assert.rejects(c.request({ method: 'POST', path: '/x', json: {}, onWait: (r) => waits.push(r) }), (err: LabError) => err.code === 'NETWORK' && /ECONNREFUSED/.test(err.message));
    assert.equal(waits.length, 2, 'refused connections are safe to retry even for a POST');
    c.close();
  });

  test('a secret never appears in an error message', async () => {
    const secret = 'sk_test_FAKEKEY_0123456789';
    registerSecret(secret);
    const srv = await scriptedServer((req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      // A server echoing the credential back must not leak it through our message.
      res.end(JSON.stringify({ error: { message: `bad key ${secret} in ${req.headers.authorization}` } }));
    });
    const c = new HttpClient({
      service: 'Test',
      baseUrl: srv.url,
      auth: () => ({ Authorization: `Basic ${Buffer.from(`${secret}:`).toString('base64')}` }),
      describeApiError: (_s, body) => ({ message: (body as { error: { message: string } }).error.message }),
    });
    await assert.rejects(c.request({ method: 'GET', path: '/x' }), (err: LabError) => {
      assert.ok(!err.message.includes(secret), err.message);
      assert.ok(!err.message.includes(Buffer.from(`${secret}:`).toString('base64')), err.message);
      assert.match(err.message, /\*\*\*/);
      return true;
    });
    assert.equal(redact(`key=${secret}`), 'key=***');
    c.close();
    await srv.close();
  });

  test('cancelling stops a request waiting to retry', async () => {
    const srv = await scriptedServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{}');
    });
    const c = new HttpClient({ service: 'Test', baseUrl: srv.url, backoff: { baseMs: 5000, maxMs: 5000 } });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('node closed')), 100);
    const t0 = Date.now();
    await assert.rejects(c.request({ method: 'GET', path: '/x', signal: ac.signal }), (err: LabError) => err.code === 'CANCELLED');
    assert.ok(Date.now() - t0 < 2000);
    c.close();
    await srv.close();
  });
});

describe('RateGovernor', () => {
  test('never lets more than `limit` requests start in one window', async () => {
    const g = new RateGovernor({ limit: 5, windowMs: 300 });
    const starts: number[] = [];
    const t0 = Date.now();
    // Each acquire is answered at once (settle without headers), as the HTTP client does after a request.
    await Promise.all(Array.from({ length: 12 }, () => g.acquire().then(() => (g.settle(), starts.push(Date.now() - t0)))));
    starts.sort((a, b) => a - b);
    for (let i = 5; i < starts.length; i++) {
      assert.ok(starts[i] - starts[i - 5] >= 300, `request ${i} started ${starts[i] - starts[i - 5]} ms after request ${i - 5}`);
    }
  });

  test('honours x-rate-limit-remaining: 0 until the reset', async () => {
    const g = new RateGovernor({ limit: 0, windowMs: 1000 });
    g.observe({ 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': '1' });
    const t0 = Date.now();
    await g.acquire();
    assert.ok(Date.now() - t0 >= 1000);
  });
});

describe('RateGovernor: interactive requests before bulk ones (blob parts)', () => {
  test('a waiting interactive request goes before bulk requests that waited longer', async () => {
    const g = new RateGovernor({ limit: 0, windowMs: 1000 });
    g.blockUntil(Date.now() + 100); // everyone waits
    const order: string[] = [];
    const all = [
      g.acquire(undefined, 'bulk').then(() => order.push('part 1')),
      g.acquire(undefined, 'bulk').then(() => order.push('part 2')),
      g.acquire().then(() => order.push('poll')),
      g.acquire(undefined, 'interactive').then(() => order.push('create')),
    ];
    await Promise.all(all);
    assert.deepEqual(order, ['poll', 'create', 'part 1', 'part 2']);
  });

  test('bulk requests leave a sixth of the window to interactive ones', async () => {
    assert.deepEqual([60, 12, 6, 2, 1, 0].map(bulkLimit), [50, 10, 5, 1, 1, 0]);
    const g = new RateGovernor({ limit: 12, windowMs: 60_000 });
    for (let i = 0; i < 10; i++) await g.acquire(undefined, 'bulk');
    const cancel = new AbortController();
    let eleventh = 'waiting';
    const waiting = g.acquire(cancel.signal, 'bulk').then(
      () => (eleventh = 'sent'),
      (err: LabError) => (eleventh = err.code),
    );
    // The window holds 10 bulk sends: the two slots left are the interactive share.
    await g.acquire();
    await g.acquire(undefined, 'interactive');
    assert.equal(eleventh, 'waiting', 'the 11th part waits for the window');
    cancel.abort();
    await waiting;
    assert.equal(eleventh, 'CANCELLED');
  });

  test('a cancelled interactive waiter does not hold bulk requests back', async () => {
    const g = new RateGovernor({ limit: 0, windowMs: 1000 });
    g.blockUntil(Date.now() + 100);
    const cancel = new AbortController();
    const poll = g.acquire(cancel.signal).then(
      () => 'sent',
      (err: LabError) => err.code,
    );
    const part = g.acquire(undefined, 'bulk').then(() => 'sent');
    cancel.abort();
    assert.equal(await poll, 'CANCELLED');
    assert.equal(await part, 'sent');
  });
});

describe('RateGovernor across a restart', () => {
  test('a new governor over the same state file waits for the window instead of bursting', async () => {
    const file = path.join(tempDir('governor'), 'labwire-state', 'rate.jsonl');
    const windowMs = 800;
    const first = new RateGovernor({ limit: 5, windowMs, stateFile: file });
    for (let i = 0; i < 5; i++) await first.acquire().then(() => first.settle());
    const firstSent = Date.now();
    // A new process: nothing in memory, only the file (also through governorFor, whose map is cleared).
    forgetGovernors();
    const second = governorFor('tenant after restart', { limit: 5, windowMs, stateFile: file });
    assert.notEqual(second, first);
    const t0 = Date.now();
    await second.acquire();
    // The five earlier sends hold the window until they are windowMs (+ the 250 ms margin) old.
    assert.ok(Date.now() - firstSent >= windowMs, `sent again after ${Date.now() - firstSent} ms, within the ${windowMs} ms window`);
    assert.ok(Date.now() - t0 < 5000);
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    assert.ok(lines.length <= 12, `the file stays small (${lines.length} lines)`);
    forgetGovernors();
  });

  test('a 429 block survives a restart; a torn last line is skipped', async () => {
    const file = path.join(tempDir('governor'), 'rate.jsonl');
    const g = new RateGovernor({ limit: 100, windowMs: 1000, stateFile: file });
    await g.acquire();
    g.settle();
    const until = Date.now() + 700;
    g.blockUntil(until);
    fs.appendFileSync(file, 's 17335'); // killed mid-write
    const after = new RateGovernor({ limit: 100, windowMs: 1000, stateFile: file });
    await after.acquire();
    assert.ok(Date.now() >= until, 'the new process waited for the block');
    assert.ok(fs.readFileSync(file, 'utf8').split('\n').every((l) => l === '' || /^[sb] \d{13}$/.test(l)), 'the torn line is gone after compaction');
  });

  test('a state file that cannot be written: one warning, requests still go', async () => {
    const notADir = path.join(tempDir('governor'), 'plain-file');
    fs.writeFileSync(notADir, 'x');
    const warnings: LabError[] = [];
    const g = new RateGovernor({ limit: 100, windowMs: 1000, stateFile: path.join(notADir, 'rate.jsonl'), onStateError: (e) => warnings.push(e) });
    for (let i = 0; i < 10; i++) await g.acquire().then(() => g.settle());
    g.blockUntil(Date.now() + 10);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0].key, 'http.rateStateUnusable');
    assert.match(warnings[0].message, /kept in memory only/);
  });

  test('the state file is named by a hash: neither the API key nor the tenant in its name', () => {
    const dir = tempDir('governor');
    const key = 'sk_FAKE_state_file_name_key';
    const c = new BenchlingClient({ tenantUrl: 'https://acme.benchling.com', apiKey: key, stateDir: dir });
    const names = fs.readdirSync(path.join(dir, 'labwire-state'));
    assert.equal(names.length, 1);
    assert.match(names[0], /^rate-limit-benchling-[0-9a-f]{16}\.jsonl$/);
    assert.ok(!names[0].includes('acme') && !names[0].includes(key));
    c.close();
    forgetGovernors();
  });

  test('two processes back to back against a 10 / 3 s tenant: no 429 with the state file', async () => {
    // One child process = one Node-RED lifetime: 10 requests at once, then exit.
    const clientJs = path.resolve(__dirname, '..', 'nodes', 'clients', 'benchling', 'client.js');
    const script = path.join(tempDir('governor'), 'burst.js');
    fs.writeFileSync(
      script,
      `const { BenchlingClient } = require(${JSON.stringify(clientJs)});
       const [url, key, run, stateDir] = process.argv.slice(2);
       const c = new BenchlingClient({ tenantUrl: url, apiKey: key, rateLimit: { limit: 10, windowMs: 3000 }, stateDir: stateDir || undefined });
       Promise.all(Array.from({ length: 10 }, () => c.http.request({ method: 'GET', path: '/assay-runs/' + run })))
         .then(() => c.close(), (e) => { console.error(e.message); process.exitCode = 1; c.close(); });`,
    );
    const runChild = (args: string[]) =>
      new Promise<void>((resolve, reject) => execFile(process.execPath, [script, ...args], { timeout: 30_000 }, (err, _out, stderr) => (err ? reject(new Error(`${err.message} ${stderr}`)) : resolve())));
    const count429 = async (stateDir: string) => {
      const lab = await startLabSimulator({ benchling: { rateLimit: { limit: 10, windowMs: 3000 } } });
      try {
        const args = [lab.benchling.url, DEFAULT_API_KEY, SEED.runs[0].id, stateDir];
        await runChild(args);
        await runChild(args); // the restart
        return lab.benchling.counters.rateLimited;
      } finally {
        await lab.close();
      }
    };
    const without = await count429('');
    const withState = await count429(tempDir('governor-state'));
    console.log(`429s after a restart: ${without} in memory only, ${withState} with the state file`);
    // Memory only used to burst into the window the server still counted. Now the restarted
    // process first asks with one request where the tenant's window stands (rate-policy.ts), so
    // neither way sees a 429; the state file still covers servers that send no rate headers.
    assert.equal(without, 0);
    assert.equal(withState, 0);
  });
});

describe('proxies', () => {
  let target: Awaited<ReturnType<typeof scriptedServer>>;
  let proxy: http.Server;
  let proxyUrl = '';
  const seen: string[] = [];
  before(async () => {
    target = await scriptedServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"direct":true}');
    });
    // A forward proxy: answers itself, recording the absolute URL it was asked for.
    proxy = http.createServer((req, res) => {
      seen.push(String(req.url));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"viaProxy":true}');
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });
  after(async () => {
    await target.close();
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
  });

  test('HTTP_PROXY is used, NO_PROXY bypasses it', async () => {
    const saved = { ...process.env };
    try {
      process.env.HTTP_PROXY = proxyUrl;
      process.env.NO_PROXY = '';
      const viaProxy = new HttpClient({ service: 'Test', baseUrl: target.url });
      const r1 = await viaProxy.request<{ viaProxy?: boolean }>({ method: 'GET', path: '/through' });
      assert.equal(r1.data.viaProxy, true);
      assert.equal(seen.at(-1), `${target.url}/through`);
      viaProxy.close();

      process.env.NO_PROXY = '127.0.0.1';
      const direct = new HttpClient({ service: 'Test', baseUrl: target.url });
      const r2 = await direct.request<{ direct?: boolean }>({ method: 'GET', path: '/direct' });
      assert.equal(r2.data.direct, true);
      direct.close();
    } finally {
      process.env = saved;
    }
  });

  test('a missing CA file is a clear error', () => {
    assert.throws(
      () => new HttpClient({ service: 'Test', baseUrl: 'https://example.invalid', network: { caFile: '/nonexistent/ca.pem' } }),
      /CA file \/nonexistent\/ca.pem cannot be read/,
    );
  });
});
