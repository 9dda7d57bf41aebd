/**
 * The "Lab files" editor sidebar: a Node-RED plugin whose editor part (lab-files.html, next to
 * this file) adds the tab. It reads the watchers' file view over the admin API (`labwire/files`,
 * served by the pack's admin routes) and follows `labwire/files` comms messages; the runtime part
 * only registers the plugin so its catalogue (`locales/<lang>/lab-files.json`) gets the namespace
 * `<package>/lab-files`.
 */
import type { NodeAPI } from 'node-red';

export = function (RED: NodeAPI): void {
  RED.plugins.registerPlugin('labwire-files', { type: 'labwire-files' } as never);
};
