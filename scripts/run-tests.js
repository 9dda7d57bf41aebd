// Runs every compiled test file with Node's own test runner, in two lanes:
//   1. Node-RED 4.1 (the `node-red` dev dependency) on the Node that runs npm (20 in CI);
//   2. Node-RED 5.x (the `node-red-5` dev dependency, npm:node-red@5) on Node 22 (the `node@22`
//      registry package through `npx -y -p node@22`, or NODE22_PATH): the test files that drive
//      Node-RED (the node tests through the test helper, the end-to-end and browser tests through
//      scripts/node-red-process), with `node-red` resolved to node-red-5 (scripts/nr5-resolve.js).
// Arguments: optional file-name filters; `--lane=4` or `--lane=5` runs one lane only.
// LABWIRE_SKIP_NR5=1 skips lane 2 with a notice (never in CI: CI=true refuses it).
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const testDir = path.join(root, 'dist', 'test');
const args = process.argv.slice(2);
const lane = (args.find((a) => a.startsWith('--lane=')) || '--lane=all').slice('--lane='.length);
const filters = args.filter((a) => !a.startsWith('--'));
const inCI = process.env.CI === 'true' || process.env.CI === '1';

const files = [];
(function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.test.js') && (filters.length === 0 || filters.some((f) => p.includes(f)))) files.push(p);
  }
})(testDir);
files.sort();
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}

/** Test files that run Node-RED: through the test helper or a real node-red process. */
function drivesNodeRed(file) {
  const src = fs.readFileSync(file, 'utf8');
  return /require\("\.\/support\/nodered"\)|require\("\.\.\/support\/nodered"\)|node-red-process|require\("\.\/support"\)/.test(src);
}

function node22() {
  if (process.env.NODE22_PATH) return process.env.NODE22_PATH;
  if (/^v22\./.test(process.version)) return process.execPath;
  const r = spawnSync('npx', ['-y', '-p', 'node@22', 'node', '-p', 'process.execPath'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  const p = (r.stdout || '').trim().split('\n').pop();
  if (r.status !== 0 || !p || !fs.existsSync(p)) {
    throw new Error(`could not get Node 22 from the npm registry (npx -y -p node@22): ${r.stderr || r.error || r.status}`);
  }
  return p;
}

function runLane(name, nodeBin, laneFiles, extraEnv) {
  const t0 = Date.now();
  console.log(`\n=== ${name}: ${laneFiles.length} test files ===`);
  const r = spawnSync(nodeBin, ['--test', '--test-reporter=spec', ...laneFiles], { stdio: 'inherit', env: { ...process.env, ...extraEnv } });
  const secs = Math.round((Date.now() - t0) / 1000);
  const status = r.status === null ? 1 : r.status;
  console.log(`=== ${name}: ${status === 0 ? 'passed' : 'FAILED'} in ${secs} s ===`);
  return { name, status, secs };
}

const results = [];
if (lane === 'all' || lane === '4') {
  results.push(runLane(`Node-RED ${require(path.join(root, 'node_modules', 'node-red', 'package.json')).version} on Node ${process.version}`, process.execPath, files, {}));
}
if (lane === 'all' || lane === '5') {
  const nr5Files = files.filter(drivesNodeRed);
  if (process.env.LABWIRE_SKIP_NR5 === '1' && !inCI) {
    console.log('\n=== Node-RED 5 lane skipped (LABWIRE_SKIP_NR5=1) ===');
  } else if (nr5Files.length === 0) {
    console.log('\n=== Node-RED 5 lane: no test file drives Node-RED (filters?) ===');
  } else {
    let bin;
    try {
      bin = node22();
    } catch (e) {
      console.error(`run-tests: Node-RED 5 lane: ${e.message}`);
      results.push({ name: 'Node-RED 5 lane', status: 1, secs: 0 });
    }
    if (bin) {
      const v = spawnSync(bin, ['-v'], { encoding: 'utf8' }).stdout.trim();
      const nr5 = require(path.join(root, 'node_modules', 'node-red-5', 'package.json')).version;
      const preload = path.join(__dirname, 'nr5-resolve.js');
      const nodeOptions = `${process.env.NODE_OPTIONS || ''} --require ${JSON.stringify(preload).slice(1, -1)}`.trim();
      // Put Node 22 first on PATH so anything the tests start with `node` runs on it too.
      const env = { NODE_OPTIONS: nodeOptions, PATH: `${path.dirname(bin)}${path.delimiter}${process.env.PATH}`, LABWIRE_NODE_RED_LANE: '5' };
      results.push(runLane(`Node-RED ${nr5} on Node ${v}`, bin, nr5Files, env));
    }
  }
}
console.log('\n=== summary ===');
for (const r of results) console.log(`${r.status === 0 ? 'passed' : 'FAILED'}  ${r.name}  (${r.secs} s)`);
process.exit(results.every((r) => r.status === 0) ? 0 : 1);
