/**
 * Shared by the browser suite and the package test: the pack's node types (discovered, never
 * listed by hand), `npm pack` + `npm install <tarball>` into a fresh Node-RED user directory,
 * which Node-RED (4 or 5) the process runs, and where Chromium is.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { PROJECT_ROOT } from '../../scripts/node-red-process';

export { PROJECT_ROOT };

export interface PackTypes {
  name: string;
  all: string[];
  config: string[];
  nodes: string[];
  sets: Array<{ set: string; js: string; html: string; types: Array<{ type: string; config: boolean }> }>;
}

/** package.json `node-red.nodes` → the built editor .html files → their registerType('<type>', …) calls. */
export function packTypes(root = PROJECT_ROOT): PackTypes {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(PROJECT_ROOT, 'scripts', 'pack-types.js')).packTypes(root);
}

/** The Node-RED this process runs against (the Node-RED 5 lane redirects `node-red`, see scripts/nr5-resolve.js). */
export function nodeRedVersion(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node-red/package.json').version;
}

export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

/** Chromium for the browser tests (CHROMIUM_PATH, if set, is the only candidate); in CI its absence is a failure (see requireChromium). */
export const CHROMIUM = (process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : ['/usr/bin/chromium', '/usr/bin/chromium-browser']).find((p) => fs.existsSync(p));

/**
 * How a browser suite runs without Chromium: skipped with a reason on a developer machine, a loud
 * failure in CI (CI=true), where .ci/run installs Debian's chromium and a silent skip would hide
 * that the editor was never tested.
 */
export function chromiumOrSkip(): string | false {
  if (CHROMIUM) return false;
  if (IN_CI) return false; // not skipped: the suite's before() throws
  return 'no Chromium found (install Debian chromium or set CHROMIUM_PATH); CI fails instead of skipping';
}

export function requireChromium(): string {
  if (!CHROMIUM) throw new Error('Chromium is missing: CI=true requires it for the editor tests (.ci/run installs it with apt-get install -y chromium; did that step fail?)');
  return CHROMIUM;
}

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

export { freePort } from '../../scripts/node-red-process';

export interface PackResult {
  tarball: string;
  files: string[];
  size: number;
  unpackedSize: number;
}

/** `npm pack` of the built project into `dest`. */
export function npmPack(dest: string): PackResult {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dest], { cwd: PROJECT_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const info = JSON.parse(out)[0] as { filename: string; files: Array<{ path: string }>; size: number; unpackedSize: number };
  return { tarball: path.join(dest, info.filename), files: info.files.map((f) => f.path).sort(), size: info.size, unpackedSize: info.unpackedSize };
}

/**
 * A fresh Node-RED user directory with the tarball installed the way the palette manager and
 * the README do it: `npm install <tarball>` in the user directory. Runtime dependencies come from
 * the registry (or npm's cache).
 */
export function installTarball(userDir: string, tarball: string): string {
  fs.mkdirSync(userDir, { recursive: true });
  fs.writeFileSync(path.join(userDir, 'package.json'), JSON.stringify({ name: 'node-red-project', description: 'A Node-RED Project', version: '0.0.1', private: true }, null, 2));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--omit=dev', tarball], {
    cwd: userDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    // The Node-RED 5 lane's resolver preload is for the tests, not for npm.
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const name = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')).name as string;
  const installed = path.join(userDir, 'node_modules', ...name.split('/'));
  if (fs.lstatSync(installed).isSymbolicLink()) throw new Error(`${installed} is a link, not an installed copy`);
  return installed;
}
