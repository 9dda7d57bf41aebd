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
import { RateGovernor } from '../nodes/lib/http/governor';

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
    await Promise.all(Array.from({ length: 12 }, () => g.acquire().then(() => starts.push(Date.now() - t0))));
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
