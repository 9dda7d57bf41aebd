// The pack's node types, found the way Node-RED and `node-red-dev` find them: every file in
// package.json `node-red.nodes`, its editor file (the .js path with .html), and the
// `registerType('<type>', { … })` calls in that file's `<script type="text/javascript">` blocks.
// Never a hard-coded list: nodes are added all the time. Needs a build (reads dist/).
'use strict';
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');

/**
 * @param {string} [root] package root (default: this project); also works on an unpacked tarball
 * @returns {{ name: string, sets: Array<{set: string, js: string, html: string, types: Array<{type: string, config: boolean}>}>,
 *             all: string[], config: string[], nodes: string[] }}
 */
function packTypes(root = ROOT) {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const nodes = (pkg['node-red'] && pkg['node-red'].nodes) || {};
  const sets = [];
  for (const [set, js] of Object.entries(nodes)) {
    const html = path.join(root, js.replace(/\.js$/, '.html'));
    if (!fs.existsSync(html)) throw new Error(`pack-types: ${set}: no editor file ${path.relative(root, html)} (run the build)`);
    const text = fs.readFileSync(html, 'utf8');
    const scripts = [...text.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)].map((m) => m[1]).join('\n');
    const types = [];
    const re = /RED\.nodes\.registerType\(\s*(['"])([^'"]+)\1\s*,\s*\{/g;
    const hits = [...scripts.matchAll(re)];
    hits.forEach((m, i) => {
      const body = scripts.slice(m.index, i + 1 < hits.length ? hits[i + 1].index : scripts.length);
      types.push({ type: m[2], config: /\bcategory\s*:\s*['"]config['"]/.test(body) });
    });
    if (types.length === 0) throw new Error(`pack-types: ${set}: no registerType('<type>', {…}) in ${path.relative(root, html)}`);
    sets.push({ set, js, html, types });
  }
  const flat = sets.flatMap((s) => s.types);
  return {
    name: pkg.name,
    sets,
    all: flat.map((t) => t.type).sort(),
    config: flat.filter((t) => t.config).map((t) => t.type).sort(),
    nodes: flat.filter((t) => !t.config).map((t) => t.type).sort(),
  };
}

module.exports = { packTypes, ROOT };

if (require.main === module) console.log(JSON.stringify(packTypes(process.argv[2] || ROOT), null, 2));
