/**
 * `bioaf-host` config node: where bioAF is, its Integration API key and the webhook signing
 * secrets. The key and the secrets are Node-RED credentials (encrypted in flows_cred.json, never
 * in flows.json). The secrets are a list because rotating one in bioAF is a hard cut-over:
 * list the new secret and the old one until the old one is gone from every delivery.
 * `${ENV}` works in the URL, the key and the secrets.
 */
import type { NodeAPI, NodeDef } from 'node-red';
import type { BioafHostNode } from './lib/config-nodes';
import { BioafClient } from './clients/bioaf/client';
import { fromEnv, parseSecrets } from './clients/bioaf/webhook';
import { registerSecret } from './lib/http/errors';
import { translator } from './lib/node-red';
import { Settings } from './lib/settings';

interface BioafHostDef extends NodeDef {
  url: string;
  timeout?: string | number;
  caFile?: string;
}

export = function (RED: NodeAPI): void {
  function BioafHost(this: BioafHostNode, def: BioafHostDef) {
    RED.nodes.createNode(this, def);
    let client: BioafClient | null = null;
    const s = new Settings(RED, this);
    const timeoutMs = s.seconds(translator(RED, 'bioaf-host')('label.timeout'), def.timeout, { default: 30, min: 0.1 });
    this.settingsProblem = () => s.ownProblem();
    const secrets = parseSecrets(this.credentials?.webhookSecrets);
    for (const s of secrets) registerSecret(s);
    this.webhookSecrets = () => secrets.slice();
    this.client = () => {
      if (!client) {
        client = new BioafClient({
          url: fromEnv(def.url),
          apiKey: fromEnv(this.credentials?.apiKey),
          timeoutMs,
          network: { caFile: def.caFile?.trim() || undefined },
        });
      }
      return client;
    };
    this.on('close', (done: () => void) => {
      client?.close();
      client = null;
      done();
    });
  }
  RED.nodes.registerType('bioaf-host', BioafHost as never, {
    credentials: { apiKey: { type: 'password' }, webhookSecrets: { type: 'password' } },
  });
};
