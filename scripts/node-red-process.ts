/**
 * Starts a real Node-RED (the project's own dev dependency) as a child process with this pack
 * installed into its user directory, and deploys flows through the admin API. Used by
 * `npm start` (the demo) and by the end-to-end tests, so both run exactly what a user runs.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as http from 'http';
import * as net from 'net';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

export interface NodeRedOptions {
  /** The user directory (created if needed). */
  userDir: string;
  port: number;
  host?: string;
  /** Extra environment for the Node-RED process (e.g. BENCHLING_URL for `${ENV}` in flows). */
  env?: Record<string, string>;
  /** Where Node-RED's log lines go; default: dropped. */
  onLog?: (line: string) => void;
  /** The node executable (another Node version, e.g. for Node-RED 5). */
  nodePath?: string;
  /**
   * Link the project into `<userDir>/node_modules` (default true). False when the caller has
   * installed the pack itself, e.g. `npm install <tarball>` from `npm pack` (test/browser, test/package).
   */
  linkPack?: boolean;
  /** More settings.js values (e.g. `lang`), over the defaults. */
  settings?: Record<string, unknown>;
  /**
   * JavaScript source of an object merged over the settings last, for values JSON cannot carry
   * (e.g. `adminAuth` with a `tokens` function).
   */
  settingsCode?: string;
}

export interface NodeRedProcess {
  url: string;
  child: ChildProcess;
  /** Deploys a full flow configuration; node objects may carry `credentials`. `headers`: e.g. an Authorization with adminAuth. */
  deploy(flows: unknown[], headers?: Record<string, string>): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Puts the pack into `<userDir>/node_modules/<name>` as a link to the project, as `npm install <path>` does. */
function installPackLink(userDir: string): void {
  const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { name: string };
  const link = path.join(userDir, 'node_modules', ...pkg.name.split('/'));
  fs.mkdirSync(path.dirname(link), { recursive: true });
  try {
    if (fs.realpathSync(link) === fs.realpathSync(PROJECT_ROOT)) return;
    fs.rmSync(link, { recursive: true, force: true });
  } catch {
    /* not there yet */
  }
  fs.symlinkSync(PROJECT_ROOT, link, process.platform === 'win32' ? 'junction' : 'dir');
}

function writeSettings(userDir: string, o: NodeRedOptions): string {
  const file = path.join(userDir, 'settings.js');
  const settings = {
    uiHost: o.host ?? '127.0.0.1',
    uiPort: o.port,
    flowFile: 'flows.json',
    // A fixed secret so the demo's encrypted credentials survive restarts. Real deployments set
    // their own through the environment (see the README's deployment notes).
    credentialSecret: process.env.NODE_RED_CREDENTIAL_SECRET || 'labwire-demo-only-not-a-real-secret',
    editorTheme: { tours: false, projects: { enabled: false }, palette: { catalogues: [] } },
    diagnostics: { enabled: false },
    telemetry: { enabled: false },
    logging: { console: { level: 'info', metrics: false, audit: false } },
    ...o.settings,
  };
  const code = o.settingsCode ? `Object.assign(${JSON.stringify(settings, null, 2)}, ${o.settingsCode})` : JSON.stringify(settings, null, 2);
  fs.writeFileSync(file, `module.exports = ${code};\n`);
  return file;
}

function request(url: string, method: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(url, { method, headers: { ...headers, ...(data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {}) } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${url}: no answer`)));
    req.end(data);
  });
}

export async function startNodeRed(o: NodeRedOptions): Promise<NodeRedProcess> {
  fs.mkdirSync(o.userDir, { recursive: true });
  if (o.linkPack !== false) installPackLink(o.userDir);
  const settings = writeSettings(o.userDir, o);
  const redJs = require.resolve('node-red/red.js');
  const child = spawn(o.nodePath ?? process.execPath, [redJs, '--userDir', o.userDir, '--settings', settings], {
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = `http://${o.host ?? '127.0.0.1'}:${o.port}`;
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? -1));
  for (const stream of [child.stdout!, child.stderr!]) {
    let buf = '';
    stream.on('data', (chunk) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        o.onLog?.(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited !== null) throw new Error(`Node-RED exited with code ${exited} before it was ready (is port ${o.port} free?)`);
    try {
      const r = await request(`${url}/settings`, 'GET');
      // 401: adminAuth is set and the admin API answers; the runtime is up all the same.
      if (r.status === 200 || r.status === 401) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('Node-RED did not start within 60 s');
    }
    await new Promise((r) => setTimeout(r, 250));
  }

  return {
    url,
    child,
    async deploy(flows: unknown[], headers: Record<string, string> = {}) {
      const r = await request(`${url}/flows`, 'POST', flows, { 'Node-RED-Deployment-Type': 'full', 'Node-RED-API-Version': 'v1', ...headers });
      if (r.status !== 204 && r.status !== 200) throw new Error(`deploy failed: HTTP ${r.status} ${r.text}`);
    },
    stop(signal: NodeJS.Signals = 'SIGINT') {
      return new Promise<void>((resolve) => {
        if (exited !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill(signal);
      });
    },
  };
}

/** A TCP port free on 127.0.0.1 right now (for a Node-RED under test). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Reads an example flow from `examples/`. */
export function readExample(name: string): Array<Record<string, unknown>> {
  return JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'examples', `${name}.json`), 'utf8'));
}
