// Preload (`--require`) for the Node-RED 5 test lane (scripts/run-tests.js): makes `node-red`,
// `node-red/...` and `@node-red/...` resolve to the `node-red-5` dev dependency
// (`npm:node-red@5`) instead of the default `node-red` (4.1), so the same compiled tests, the test
// helper (which does `require.resolve('node-red')`) and scripts/node-red-process.ts
// (`require.resolve('node-red/red.js')`) run against Node-RED 5. Inherited by child processes
// through NODE_OPTIONS; harmless there.
'use strict';
const Module = require('module');
const path = require('path');

const root = path.resolve(__dirname, '..');
const nr5 = path.dirname(require.resolve('node-red-5/package.json', { paths: [root] }));
const orig = Module._resolveFilename;
Module._resolveFilename = function (request, parent, isMain, options) {
  if (request === 'node-red' || request.startsWith('node-red/')) {
    return orig.call(this, nr5 + request.slice('node-red'.length), parent, isMain, options);
  }
  if (request.startsWith('@node-red/') && !(parent && parent.filename && parent.filename.startsWith(nr5 + path.sep))) {
    return orig.call(this, request, parent, isMain, { paths: [nr5] });
  }
  return orig.call(this, request, parent, isMain, options);
};
