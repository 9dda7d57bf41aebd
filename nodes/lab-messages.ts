/**
 * A Node-RED plugin with no behaviour of its own: it gives the pack's shared message catalogue
 * (`locales/<lang>/lab-messages.json` — errors and the shared layer's status texts) a namespace,
 * `<package>/lab-messages`, that Node-RED loads in every language. Node sets only get a catalogue
 * for their own file, and these texts belong to no single node.
 */
import type { NodeAPI } from 'node-red';

export = function (RED: NodeAPI): void {
  RED.plugins.registerPlugin('labwire-messages', { type: 'labwire-messages' } as never);
};
