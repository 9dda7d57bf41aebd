// Build: TypeScript → CommonJS in dist/, then put each node's editor .html, the icons and the
// locale catalogues next to the compiled node .js files, where Node-RED's loader looks for them.
//
// Skipped when dist/ is current: a fingerprint of every build input (contents, not mtimes, so a
// checkout or copy that touches files without changing them does not force a rebuild) is kept in
// dist/.build-stamp. `npm start` therefore compiles only on the first run after a change.
// `node scripts/build.js --force` (or LABWIRE_FORCE_BUILD=1) always rebuilds.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { execFileSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
const stampFile = path.join(dist, '.build-stamp');

// Everything the output depends on: the TypeScript roots of tsconfig.json (with any JSON they
// import), the copied editor files, icons and catalogues, the compiler's version and this script.
const INPUT_DIRS = ['nodes', 'simulator', 'test', 'bench', 'scripts', 'icons', 'locales'];
const SKIP_DIRS = new Set(['out', 'node_modules']);
const INPUT_FILES = ['tsconfig.json', 'package.json', 'node_modules/typescript/package.json'];

function walk(rel, out) {
  const abs = path.join(root, rel);
  let entries;
  try {
    entries = fs.readdirSync(abs, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const child = path.posix.join(rel, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) walk(child, out);
    } else if (e.isFile()) out.push(child);
  }
}

function fingerprint() {
  const files = [];
  for (const d of INPUT_DIRS) walk(d, files);
  files.push(...INPUT_FILES);
  files.sort();
  const hash = crypto.createHash('sha256');
  for (const f of files) {
    hash.update(f + '\0');
    try {
      hash.update(fs.readFileSync(path.join(root, f)));
    } catch {
      hash.update('missing');
    }
    hash.update('\0');
  }
  return hash.digest('hex');
}

const force = process.argv.includes('--force') || process.env.LABWIRE_FORCE_BUILD === '1';
const stamp = fingerprint();
if (!force && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8').trim() === stamp) {
  console.error('build: dist/ is current (sources unchanged), nothing to do');
  process.exit(0);
}

fs.rmSync(dist, { recursive: true, force: true });
// Messages and compiler output go to stderr: `npm pack --json` runs this as prepack, and its
// stdout must stay the JSON it prints.
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], {
  stdio: ['inherit', 2, 2],
});

const nodesOut = path.join(dist, 'nodes');
for (const f of fs.readdirSync(path.join(root, 'nodes'))) {
  if (f.endsWith('.html')) fs.copyFileSync(path.join(root, 'nodes', f), path.join(nodesOut, f));
}
fs.cpSync(path.join(root, 'icons'), path.join(nodesOut, 'icons'), { recursive: true });
fs.cpSync(path.join(root, 'locales'), path.join(nodesOut, 'locales'), { recursive: true });
// Written last: an interrupted build leaves no stamp, so the next run builds again.
fs.writeFileSync(stampFile, stamp + '\n');
console.error('build: dist/ ready');
