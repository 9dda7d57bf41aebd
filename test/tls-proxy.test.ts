/**
 * Lab networks: a company CA (TLS inspection) and HTTPS through a CONNECT proxy, with real TLS on
 * 127.0.0.1. The certificate is made per run with openssl (skipped, saying so, where it is absent).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';
import * as path from 'path';
import { HttpClient } from '../nodes/lib/http/client';
import { LabError } from '../nodes/lib/http/errors';
import { tempDir } from './support/nodered';

function makeCert(dir: string): { key: string; cert: string } | null {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=labwire test CA', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    return { key, cert };
  } catch {
    return null;
  }
}

const dir = tempDir('tls');
const pems = makeCert(dir);
const skip = pems ? false : 'openssl is not available to make a test certificate';

describe('TLS and CONNECT proxies', { skip }, () => {
  let server: https.Server;
  let target = '';
  let proxy: http.Server;
  let proxyUrl = '';
  const connects: string[] = [];

  before(async () => {
    server = https.createServer({ key: fs.readFileSync(pems!.key), cert: fs.readFileSync(pems!.cert) }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"secure":true}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    target = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    // A CONNECT-only proxy, as lab proxies are for HTTPS: it tunnels bytes and sees no content.
    proxy = http.createServer((_req, res) => res.writeHead(405).end());
    proxy.on('connect', (req, socket: net.Socket, head) => {
      connects.push(String(req.url));
      const [host, port] = String(req.url).split(':');
      const upstream = net.connect(Number(port), host, () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    proxy.closeAllConnections();
    await new Promise((r) => server.close(r));
    await new Promise((r) => proxy.close(r));
  });

  test('an unknown CA is refused; with the CA file it is trusted', async () => {
    const plain = new HttpClient({ service: 'Test', baseUrl: target, retries: 0, network: { noProxy: true } });
    await assert.rejects(plain.request({ method: 'GET', path: '/' }), (err: LabError) => err.code === 'NETWORK' && /SELF_SIGNED|certificate/i.test(err.message));
    plain.close();
    const withCa = new HttpClient({ service: 'Test', baseUrl: target, network: { caFile: pems!.cert, noProxy: true } });
    const res = await withCa.request<{ secure: boolean }>({ method: 'GET', path: '/' });
    assert.equal(res.data.secure, true);
    withCa.close();
  });

  test('HTTPS_PROXY: HTTPS goes through a CONNECT tunnel, with the CA applied inside it', async () => {
    const saved = { ...process.env };
    try {
      process.env.HTTPS_PROXY = proxyUrl;
      process.env.NO_PROXY = '';
      const c = new HttpClient({ service: 'Test', baseUrl: target, network: { caFile: pems!.cert } });
      const res = await c.request<{ secure: boolean }>({ method: 'GET', path: '/through-tunnel' });
      assert.equal(res.data.secure, true);
      assert.deepEqual(connects, [target.replace('https://', '')]);
      c.close();
    } finally {
      process.env = saved;
    }
  });
});
