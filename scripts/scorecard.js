// The Flow Library scorecard as a gate: runs `node-red-dev validate` (the tool behind the scorecard
// on flows.nodered.org) on what `npm pack` ships, and FAILS on what the tool only warns about
// (its exit code is always 0).
//
//   node scripts/scorecard.js            pack this project (needs `npm run build`), validate the tarball's contents
//   node scripts/scorecard.js <dir>      validate an unpacked package directory as it is
//
// Fails on: any warning for P01 P03 P04 P05 P06 P07 N02 D01 D02, "Unable to parse" (the tool
// then silently counts no node types), a run that does not reach "Complete", and an N02 node list
// that is not exactly every non-config node type of the pack (found from package.json
// `node-red.nodes` → the editor .html files, see scripts/pack-types.js).
// Advisory only (printed, never fails): D03 (dependency not at its newest major: changes with the
// registry from day to day). Not really checked: P08 and N01, which need the Flow Library
// catalogue; CI cannot reach it, so scripts/catalogue-stub.js answers it as an empty catalogue.
// P06, P07 and D03 ask the npm registry (registry.npmjs.org), which CI can reach.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync, spawnSync } = require('child_process');
const { packTypes, ROOT } = require('./pack-types');

const FAIL_IDS = ['P01', 'P03', 'P04', 'P05', 'P06', 'P07', 'N02', 'D01', 'D02'];

/** `npm pack` into a temp folder and unpack it; returns the package folder. */
function packAndUnpack(root = ROOT) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'labwire-scorecard-'));
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const tarball = path.join(tmp, JSON.parse(out)[0].filename);
  execFileSync('tar', ['-xzf', tarball, '-C', tmp]);
  return { dir: path.join(tmp, 'package'), tmp };
}

/** Runs the tool; returns { ok, problems[], advisories[], notes[], card, output }. */
function runScorecard(pkgDir) {
  const bin = require.resolve('node-red-dev/bin/run', { paths: [ROOT] });
  const outFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'labwire-scorecard-out-')), 'scorecard.json');
  const stub = path.join(__dirname, 'catalogue-stub.js');
  const r = spawnSync(process.execPath, ['--require', stub, bin, 'validate', '-p', pkgDir, '-o', outFile], {
    encoding: 'utf8',
    // node-red-dev caches npm lookups under os.tmpdir(); keep its terminal width out of the output.
    env: { ...process.env, COLUMNS: '1000' },
    timeout: 180_000,
  });
  const output = `${r.stdout || ''}${r.stderr || ''}`;
  // oclif prints warnings as " ›   Warning: <text>", wrapping long ones onto " ›   " lines.
  const warnings = [];
  for (const line of output.split('\n')) {
    const m = /^\s*›\s+(Warning:\s*)?(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] || warnings.length === 0) warnings.push(m[2].trim());
    else warnings[warnings.length - 1] += ` ${m[2].trim()}`;
  }
  const problems = [];
  const advisories = [];
  const notes = ['P08 and N01 are not really checked: the Flow Library catalogue is stubbed as empty (scripts/catalogue-stub.js)'];
  for (const w of warnings) {
    // N02's warnings carry no id.
    const id = (/^([PND]\d\d)\b/.exec(w) || [])[1] || (/^(Examples not found|No examples found|Unable to read example)/.test(w) ? 'N02' : undefined);
    if (id === 'D03') advisories.push(w);
    else if (id && !FAIL_IDS.includes(id)) problems.push(w); // P08/N01 cannot warn with the stub; anything else is news
    else problems.push(id && !w.startsWith(id) ? `${id}: ${w}` : w);
  }
  if (/Unable to parse/.test(output)) problems.push(`node-red-dev could not parse an editor file: ${(/Unable to parse.*/.exec(output) || [''])[0]}`);
  if (r.error) problems.push(`node-red-dev did not run: ${r.error.message}`);
  if (!/^Complete$/m.test(output)) problems.push('node-red-dev did not reach "Complete"');
  let card = {};
  try {
    card = JSON.parse(fs.readFileSync(outFile, 'utf8'));
  } catch (e) {
    problems.push(`no scorecard JSON written: ${e.message}`);
  }
  fs.rmSync(path.dirname(outFile), { recursive: true, force: true });
  for (const id of FAIL_IDS) {
    if (!card[id]) problems.push(`${id}: missing from the scorecard`);
    else if (card[id].test !== true) problems.push(`${id}: test is ${card[id].test}`);
  }
  const want = packTypes(pkgDir).nodes;
  const got = [...((card.N02 && card.N02.nodes) || [])].sort();
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    problems.push(`N02 lists [${got.join(', ')}] but the pack's non-config node types are [${want.join(', ')}]` +
      ` (missing: ${want.filter((t) => !got.includes(t)).join(', ') || '-'}; extra: ${got.filter((t) => !want.includes(t)).join(', ') || '-'})`);
  }
  return { ok: problems.length === 0, problems: [...new Set(problems)], advisories, notes, card, output, nodeTypes: want };
}

module.exports = { runScorecard, packAndUnpack };

if (require.main === module) {
  let dir = process.argv[2];
  let tmp;
  if (!dir) ({ dir, tmp } = packAndUnpack());
  const res = runScorecard(path.resolve(dir));
  process.stdout.write(res.output);
  console.log('\n--- scorecard gate ---');
  console.log(`non-config node types (${res.nodeTypes.length}): ${res.nodeTypes.join(', ')}`);
  for (const n of res.notes) console.log(`note: ${n}`);
  for (const a of res.advisories) console.log(`advisory: ${a}`);
  for (const p of res.problems) console.log(`FAIL: ${p}`);
  console.log(res.ok ? 'scorecard: PASS' : 'scorecard: FAIL');
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(res.ok ? 0 : 1);
}
